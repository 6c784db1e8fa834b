//! Sending policy: quiet hours, message category and what a frequency cap does.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::QuietHours;

/// Playbook-wide sending policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// No marketing messages in this local-time window; they wait until it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Category of the messages this playbook sends, for frequency caps.
    #[serde(default)]
    pub category: Category,
    /// What to do when a frequency cap blocks a message.
    #[serde(default)]
    pub on_cap: CapAction,
}

/// A step's overrides of the playbook policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_cap: Option<CapAction>,
}

impl Policy {
    /// The policy in force for a step.
    pub fn for_step(&self, step: Option<&StepPolicy>) -> Policy {
        let Some(step) = step else {
            return self.clone();
        };
        Policy {
            quiet_hours: step.quiet_hours.or(self.quiet_hours),
            category: step.category.unwrap_or(self.category),
            on_cap: step.on_cap.unwrap_or(self.on_cap),
        }
    }
}

/// Message category. Frequency caps count marketing touches; service replies answer the
/// customer and are not capped (platform limits still apply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Service,
    #[default]
    Marketing,
}

/// What happens to a message that a frequency cap blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapAction {
    /// Wait until the cap allows it, then send and continue.
    #[default]
    Defer,
    /// Do not send; continue with the next step.
    Skip,
    /// Do not send; end the run.
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_overrides_win() {
        let base = Policy {
            quiet_hours: Some("22:00-08:00".parse().unwrap()),
            category: Category::Marketing,
            on_cap: CapAction::Defer,
        };
        let step = StepPolicy {
            quiet_hours: Some(QuietHours::Off),
            category: Some(Category::Service),
            on_cap: None,
        };
        let p = base.for_step(Some(&step));
        assert_eq!(p.quiet_hours, Some(QuietHours::Off));
        assert_eq!(p.category, Category::Service);
        assert_eq!(p.on_cap, CapAction::Defer);
        assert_eq!(base.for_step(None), base);
    }
}
