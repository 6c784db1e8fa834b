//! The top level of a playbook: metadata, triggers, audience, entry rules, goals and policy.

use crate::code::Code;
use crate::cron::Schedule;
use crate::diagnostic::Diagnostic;
use crate::model::{
    Audience, AudienceTarget, CapAction, Category, CronTrigger, Entry, EventTrigger, Goal,
    InactivityTrigger, ManualTrigger, MissedFirePolicy, Playbook, Policy, QuietHours, Repeat,
    StepPolicy, Trigger, Zone,
};
use crate::syntax::{Node, Value};

use super::Ctx;
use super::read::Map;

const TOP_KEYS: &[&str] = &[
    "id",
    "version",
    "name",
    "description",
    "tenant",
    "owner",
    "timezone",
    "triggers",
    "audience",
    "entry",
    "flow",
    "goals",
    "policy",
    "steps",
];
const TRIGGER_KINDS: &[&str] = &["event", "cron", "inactive_for", "manual"];
const MISSED_FIRES: &[&str] = &["skip", "catch_up_once"];
const POLICY_KEYS: &[&str] = &["quiet_hours", "category", "on_cap"];

impl Ctx<'_> {
    pub fn playbook(&mut self, root: &Node) -> Playbook {
        let mut playbook = super::empty_playbook();
        let Some(map) = self.map(root, "the playbook", TOP_KEYS) else {
            return playbook;
        };
        if let Some(n) = self.require(&map, "id", "the playbook") {
            playbook.id = self.identifier(n, "playbook id").unwrap_or_default();
        }
        if let Some(n) = self.require(&map, "version", "the playbook") {
            match n.value {
                Value::Int(v) if (1..=i64::from(u32::MAX)).contains(&v) => {
                    playbook.version = v as u32
                }
                _ => self.push(
                    Diagnostic::new(
                        Code::BadVersion,
                        n.span.clone(),
                        "version must be a positive whole number",
                    )
                    .with_help("count versions 1, 2, 3...; raise it on every change"),
                ),
            }
        }
        playbook.name = map.get("name").and_then(|n| self.string(n, "name"));
        playbook.description = map
            .get("description")
            .and_then(|n| self.string(n, "description"));
        playbook.tenant = map.get("tenant").and_then(|n| self.string(n, "tenant"));
        self.tenant = playbook.tenant.clone();
        playbook.owner = map.get("owner").and_then(|n| self.string(n, "owner"));
        if let Some(n) = map.get("timezone") {
            playbook.timezone = self.zone(n).unwrap_or_default();
        }

        if let Some(n) = map.get("audience") {
            playbook.audience = self.audience(n);
            self.target = playbook
                .audience
                .as_ref()
                .map_or(AudienceTarget::Contacts, |a| a.target);
        }
        let misspelt = |key: &str| {
            map.node.as_map().unwrap_or(&[]).iter().any(|(k, _)| {
                k.as_str().is_some_and(|k| {
                    k != key && crate::diagnostic::did_you_mean(k, [key]).is_some()
                })
            })
        };
        match map.get("triggers") {
            None if misspelt("triggers") => {}
            None => self.push(
                Diagnostic::new(
                    Code::NoTriggers,
                    map.head(),
                    "the playbook has no `triggers`",
                )
                .with_help(
                    "add e.g. `triggers: [{event: wecom.contact_added}]`, or `[{manual: true}]`",
                ),
            ),
            Some(n) => playbook.triggers = self.triggers(n, playbook.audience.is_some()),
        }
        if let Some(n) = map.get("entry") {
            playbook.entry = self.entry(n);
        }
        if let Some(n) = map.get("flow") {
            playbook.flow = self.flow(n, &playbook.entry);
        }
        if let Some(n) = map.get("goals") {
            playbook.goals = self.goals(n);
        }
        if let Some(n) = map.get("policy") {
            playbook.policy = self.policy(n);
            self.quiet_hours = playbook.policy.quiet_hours;
        }
        match map.get("steps") {
            None if misspelt("steps") => {}
            None => self.push(Diagnostic::new(
                Code::NoSteps,
                map.head(),
                "the playbook has no `steps`",
            )),
            Some(n) => {
                let before = self.event_uses.len();
                playbook.steps = self.top_steps(n);
                self.warn_event_without_events(&playbook, before);
            }
        }
        self.warn_event_in_scheduled_audience(&map, &playbook);
        playbook
    }

    pub fn zone(&mut self, node: &Node) -> Option<Zone> {
        let text = self.string(node, "time zone")?;
        match text.parse::<Zone>() {
            Ok(z) => Some(z),
            Err(e) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                let mut d = Diagnostic::new(Code::UnknownTimeZone, node.span.clone(), e)
                    .with_help("use an IANA zone name such as `Asia/Shanghai`");
                if let Some(best) = crate::diagnostic::did_you_mean(&text, names) {
                    d = d.with_label(format!("did you mean `{best}`?"));
                }
                self.push(d);
                None
            }
        }
    }

    fn triggers(&mut self, node: &Node, has_audience: bool) -> Vec<Trigger> {
        let Some(items) = node.as_seq() else {
            self.wrong_type(node, "a list of triggers");
            return Vec::new();
        };
        if items.is_empty() {
            self.push(Diagnostic::new(
                Code::NoTriggers,
                node.span.clone(),
                "`triggers` is empty",
            ));
        }
        items
            .iter()
            .filter_map(|item| self.trigger(item, has_audience))
            .collect()
    }

    fn trigger(&mut self, node: &Node, has_audience: bool) -> Option<Trigger> {
        let kind = self.kind_of(node, "trigger", TRIGGER_KINDS)?;
        match kind {
            "event" => {
                let map = self.map(node, "an event trigger", &["event", "filter"])?;
                let event = self.event_ref(map.get("event")?)?;
                let filter = map.get("filter").and_then(|n| self.expression(n, "filter"));
                Some(Trigger::Event(EventTrigger { event, filter }))
            }
            "cron" => {
                let map = self.map(node, "a cron trigger", &["cron", "timezone", "missed"])?;
                let timezone = map.get("timezone").and_then(|n| self.zone(n));
                let missed = map
                    .get("missed")
                    .and_then(|n| self.choice(n, "missed-fire policy", MISSED_FIRES))
                    .map(|m| match m {
                        "skip" => MissedFirePolicy::Skip,
                        _ => MissedFirePolicy::CatchUpOnce,
                    });
                let cron = self.cron(map.get("cron")?)?;
                if !has_audience {
                    self.unbounded(&map, "cron");
                }
                Some(Trigger::Cron(CronTrigger {
                    cron,
                    timezone,
                    missed,
                }))
            }
            "inactive_for" => {
                let map = self.map(
                    node,
                    "an inactivity trigger",
                    &["inactive_for", "check", "timezone"],
                )?;
                let inactive_for = self.duration(map.get("inactive_for")?, "inactive_for");
                let check = match map.get("check") {
                    Some(n) => self.cron(n),
                    None => Some(crate::model::default_inactivity_check()),
                };
                let timezone = map.get("timezone").and_then(|n| self.zone(n));
                if !has_audience {
                    self.unbounded(&map, "inactive_for");
                }
                Some(Trigger::Inactivity(InactivityTrigger {
                    inactive_for: inactive_for?,
                    check: check?,
                    timezone,
                }))
            }
            _ => {
                let map = self.map(node, "a manual trigger", &["manual"])?;
                let n = map.get("manual")?;
                if self.boolean(n, "manual")? {
                    Some(Trigger::Manual(ManualTrigger { manual: true }))
                } else {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            n.span.clone(),
                            "`manual: false` does nothing",
                        )
                        .with_help("write `manual: true`, or remove the trigger"),
                    );
                    None
                }
            }
        }
    }

    fn unbounded(&mut self, map: &Map<'_>, key: &str) {
        let span = map.key_span(key).unwrap_or_else(|| map.head());
        self.push(
            Diagnostic::new(
                Code::UnboundedAudience,
                span,
                "scheduled trigger without an `audience`: every contact enters",
            )
            .with_help("add an `audience` (tags or a `where` condition) to limit who is messaged"),
        );
    }

    /// Checks a crontab expression with the cron module, pointing into the string on errors.
    pub fn cron(&mut self, node: &Node) -> Option<String> {
        let text = self.string(node, "cron expression")?;
        match Schedule::parse(&text) {
            Ok(schedule) if schedule.is_satisfiable() => Some(text),
            Ok(_) => {
                self.push(
                    Diagnostic::new(
                        Code::BadCron,
                        node.span.clone(),
                        format!("cron expression `{text}` never fires"),
                    )
                    .with_help(
                        "no date matches the day-of-month and month fields (e.g. 30 February)",
                    ),
                );
                None
            }
            Err(err) => {
                let span = match node.verbatim_at {
                    Some(at) if at + err.span.end <= node.span.end => {
                        at + err.span.start..at + err.span.end.max(err.span.start + 1)
                    }
                    _ => node.span.clone(),
                };
                self.push(
                    Diagnostic::new(Code::BadCron, span.clone(), format!("invalid cron expression: {}", err.message))
                        .with_help("fields are minute hour day-of-month month day-of-week, e.g. `0 10 * * MON-FRI`; see docs/cron.md"),
                );
                None
            }
        }
    }

    fn audience(&mut self, node: &Node) -> Option<Audience> {
        let map = self.map(
            node,
            "the audience",
            &["target", "tags_any", "tags_all", "tags_none", "where"],
        )?;
        let mut audience = Audience::default();
        if let Some(n) = map.get("target") {
            audience.target = match self.choice(n, "audience target", &["contacts", "groups"]) {
                Some("groups") => AudienceTarget::Groups,
                _ => AudienceTarget::Contacts,
            };
        }
        for (key, field) in [
            ("tags_any", &mut audience.tags_any),
            ("tags_all", &mut audience.tags_all),
            ("tags_none", &mut audience.tags_none),
        ] {
            if let Some(n) = map.get(key) {
                *field = self.string_list(n, key).unwrap_or_default();
            }
        }
        audience.condition = map
            .get("where")
            .and_then(|n| self.expression(n, "audience condition"));
        Some(audience)
    }

    fn warn_event_in_scheduled_audience(&mut self, map: &Map<'_>, playbook: &Playbook) {
        let has_event_trigger = playbook
            .triggers
            .iter()
            .any(|t| matches!(t, Trigger::Event(_)));
        let condition = map.get("audience").and_then(|a| a.get("where"));
        if let (false, Some(node), Some(text)) = (
            has_event_trigger,
            condition,
            condition.and_then(Node::as_str),
        ) && text.contains("event")
            && !playbook.triggers.is_empty()
        {
            self.push(
                Diagnostic::new(
                    Code::EventInScheduledRun,
                    node.span.clone(),
                    "the audience condition uses `event`, but no trigger is an event",
                )
                .with_help("scheduled and manual runs have no event; `event` is undefined there"),
            );
        }
    }

    /// Steps that use `event` in a playbook where no event can exist: no event trigger and no
    /// `wait_for`.
    fn warn_event_without_events(&mut self, playbook: &Playbook, first_use: usize) {
        let has_event_trigger = playbook
            .triggers
            .iter()
            .any(|t| matches!(t, Trigger::Event(_)));
        if has_event_trigger || self.has_wait_for || playbook.triggers.is_empty() {
            return;
        }
        if let Some(span) = self.event_uses.get(first_use).cloned() {
            self.push(
                Diagnostic::new(
                    Code::EventInScheduledRun,
                    span,
                    "`event` is used, but no trigger is an event and no step waits for one",
                )
                .with_help(
                    "scheduled and manual runs have no event; use `contact`, `group` or `run`",
                ),
            );
        }
    }

    fn entry(&mut self, node: &Node) -> Entry {
        let mut entry = Entry::default();
        let Some(map) = self.map(node, "entry", &["repeat", "window", "one_active_run"]) else {
            return entry;
        };
        if let Some(n) = map.get("repeat") {
            entry.repeat = match self.choice(n, "repeat", &["always", "once", "once_per_window"]) {
                Some("once") => Repeat::Once,
                Some("once_per_window") => Repeat::OncePerWindow,
                _ => Repeat::Always,
            };
        }
        entry.window = map.get("window").and_then(|n| self.duration(n, "window"));
        if let Some(n) = map.get("one_active_run") {
            entry.one_active_run = self.boolean(n, "one_active_run").unwrap_or(true);
        }
        let repeat_is_window = map.get("repeat").and_then(Node::as_str) == Some("once_per_window");
        if repeat_is_window && !map.has("window") {
            self.push(
                Diagnostic::new(
                    Code::MissingKey,
                    map.head(),
                    "`repeat: once_per_window` needs `window`",
                )
                .with_help("add e.g. `window: 30d`"),
            );
        }
        if !repeat_is_window && let Some(span) = map.key_span("window") {
            self.push(
                Diagnostic::new(
                    Code::UnusedWindow,
                    span,
                    "`window` has no effect without `repeat: once_per_window`",
                )
                .with_help("set `repeat: once_per_window`, or remove `window`"),
            );
        }
        entry
    }

    fn goals(&mut self, node: &Node) -> Vec<Goal> {
        let Some(items) = node.as_seq() else {
            self.wrong_type(node, "a list of goals");
            return Vec::new();
        };
        let mut goals = Vec::new();
        for item in items {
            let Some(map) = self.map(item, "a goal", &["name", "event", "filter"]) else {
                continue;
            };
            let name = map.get("name").and_then(|n| self.string(n, "goal name"));
            let event = self
                .require(&map, "event", "a goal")
                .and_then(|n| self.event_ref(n));
            let filter = map.get("filter").and_then(|n| self.expression(n, "filter"));
            if let Some(event) = event {
                goals.push(Goal {
                    name,
                    event,
                    filter,
                });
            }
        }
        goals
    }

    pub fn policy(&mut self, node: &Node) -> Policy {
        let step = self.step_policy(node, "the policy");
        Policy {
            quiet_hours: step.quiet_hours,
            category: step.category.unwrap_or_default(),
            on_cap: step.on_cap.unwrap_or_default(),
        }
    }

    pub fn step_policy(&mut self, node: &Node, what: &str) -> StepPolicy {
        let mut policy = StepPolicy::default();
        let Some(map) = self.map(node, what, POLICY_KEYS) else {
            return policy;
        };
        policy.quiet_hours = map
            .get("quiet_hours")
            .and_then(|n| self.parsed::<QuietHours>(n, "quiet hours", Code::BadQuietHours));
        policy.category = map.get("category").and_then(|n| {
            match self.choice(n, "message category", &["service", "marketing"])? {
                "service" => Some(Category::Service),
                _ => Some(Category::Marketing),
            }
        });
        policy.on_cap = map.get("on_cap").and_then(|n| {
            match self.choice(n, "on_cap action", &["defer", "skip", "end"])? {
                "skip" => Some(CapAction::Skip),
                "end" => Some(CapAction::End),
                _ => Some(CapAction::Defer),
            }
        });
        policy
    }

    /// Which of `kinds` names this mapping's kind; reports none or several.
    pub fn kind_of(
        &mut self,
        node: &Node,
        what: &str,
        kinds: &[&'static str],
    ) -> Option<&'static str> {
        let Some(map) = node.as_map() else {
            self.wrong_type(node, &format!("a mapping for a {what}"));
            return None;
        };
        let present: Vec<(&'static str, &Node)> = kinds
            .iter()
            .filter_map(|k| {
                map.iter()
                    .find(|(key, _)| key.as_str() == Some(k))
                    .map(|(key, _)| (*k, key))
            })
            .collect();
        match present.as_slice() {
            [(kind, _)] => Some(kind),
            [] => {
                // An unknown key near a kind name gets a "did you mean" from the key check;
                // say what is missing only when nothing else explains it.
                let typo = map
                    .iter()
                    .filter_map(|(k, _)| k.as_str())
                    .any(|k| crate::diagnostic::did_you_mean(k, kinds.iter().copied()).is_some());
                if !typo {
                    self.push(
                        Diagnostic::new(
                            Code::StepKind,
                            node.span.start..node.span.start + 1,
                            format!("this {what} does not say what it is"),
                        )
                        .with_help(format!("give it one of: {}", kinds.join(", "))),
                    );
                } else {
                    let first_typo = map.iter().find(|(k, _)| {
                        k.as_str().is_some_and(|k| {
                            crate::diagnostic::did_you_mean(k, kinds.iter().copied()).is_some()
                        })
                    });
                    if let Some((key, _)) = first_typo {
                        let name = key.as_str().unwrap_or_default();
                        let best = crate::diagnostic::did_you_mean(name, kinds.iter().copied())
                            .unwrap_or_default();
                        self.push(
                            Diagnostic::new(
                                Code::UnknownKey,
                                key.span.clone(),
                                format!("unknown {what} kind `{name}`"),
                            )
                            .with_label(format!("did you mean `{best}`?"))
                            .with_help(format!("a {what} is one of: {}", kinds.join(", "))),
                        );
                    }
                }
                None
            }
            [(first, _), (second, key), ..] => {
                self.push(
                    Diagnostic::new(
                        Code::StepKind,
                        key.span.clone(),
                        format!("a {what} has one kind, but this one has `{first}` and `{second}`"),
                    )
                    .with_help(format!("split it into two {what}s")),
                );
                None
            }
        }
    }
}
