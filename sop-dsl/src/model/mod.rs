//! The checked, typed model of a playbook: what the engine runs and stores.
//!
//! Its serde form is the YAML form operators write (a test round-trips every bundled playbook),
//! so the JSON Schema derived from it is the schema of the file format.

mod flow;
mod index;
mod playbook;
mod policy;
mod step;
mod trigger;
mod values;

pub use flow::{Debounce, Flow, Limit};
pub use index::StepIndex;
pub use playbook::{Audience, AudienceTarget, Entry, Goal, Playbook, Repeat};
pub use policy::{CapAction, Category, Policy, StepPolicy};
pub(crate) use step::default_handoff_to;
pub use step::{
    ActionStep, Branch, EndStep, GotoStep, Handoff, HandoffStep, IfStep, Outcome, RemoveTagStep,
    SetStep, SplitArm, SplitStep, Step, StepKind, TagStep, WaitFor, WaitForStep, WaitStep,
    WaitUntilStep,
};
pub(crate) use trigger::default_check as default_inactivity_check;
pub use trigger::{
    CronTrigger, EventTrigger, InactivityTrigger, ManualTrigger, MissedFirePolicy, Trigger,
};
pub use values::{
    Duration, Expression, MAX_DURATION_SECONDS, QualifiedName, QuietHours, StepId, Template,
    TimeOfDay, Zone,
};
