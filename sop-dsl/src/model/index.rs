//! Finding steps by id and where a run goes next, with the same meaning the checker uses:
//! a nested list that runs to its end continues after the step that holds it.

use std::collections::HashMap;

use super::{Branch, Playbook, Step, StepId};

/// Every step of a playbook by id, nested steps included, with its fall-through successor.
#[derive(Debug, Clone)]
pub struct StepIndex<'p> {
    steps: HashMap<&'p str, (&'p Step, Option<&'p StepId>)>,
    first: Option<&'p StepId>,
}

impl Playbook {
    /// An index of the steps. Meaningful for a playbook that checked without errors (ids unique).
    pub fn index(&self) -> StepIndex<'_> {
        let mut index = StepIndex {
            steps: HashMap::new(),
            first: self.steps.first().map(|s| &s.id),
        };
        index.add_list(&self.steps, None);
        index
    }
}

impl<'p> StepIndex<'p> {
    fn add_list(&mut self, list: &'p [Step], after_list: Option<&'p StepId>) {
        for (position, step) in list.iter().enumerate() {
            let follow = list.get(position + 1).map(|s| &s.id).or(after_list);
            self.steps.entry(step.id.as_str()).or_insert((step, follow));
            for nested in step.nested() {
                self.add_list(nested, follow);
            }
        }
    }

    /// Where every run starts.
    pub fn first(&self) -> Option<&'p StepId> {
        self.first
    }

    pub fn get(&self, id: &str) -> Option<&'p Step> {
        self.steps.get(id).map(|(step, _)| *step)
    }

    /// The step a run continues with when `id` finishes without jumping; `None` ends the run.
    pub fn after(&self, id: &str) -> Option<&'p StepId> {
        self.steps.get(id).and_then(|(_, follow)| *follow)
    }

    /// The step a branch of step `from` leads to; `None` ends the run.
    pub fn enter(&self, branch: &'p Branch, from: &str) -> Option<&'p StepId> {
        match branch {
            Branch::Goto(id) => Some(id),
            Branch::Steps(steps) => steps.first().map(|s| &s.id).or_else(|| self.after(from)),
        }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use crate::model::StepKind;

    #[test]
    fn nested_steps_fall_through_to_after_their_parent() {
        let src = "id: t\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: a\n    if: contact.vip\n    then:\n      - id: b\n        wait: 1h\n    else: []\n  - id: c\n    end: completed\n";
        let loaded = crate::load(src, None);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let index = loaded.playbook.index();
        assert_eq!(index.len(), 3);
        assert_eq!(index.first().map(|s| s.as_str()), Some("a"));
        assert_eq!(index.after("b").map(|s| s.as_str()), Some("c"));
        assert_eq!(index.after("c"), None);
        let StepKind::If(step) = &index.get("a").unwrap().kind else {
            panic!("not an if")
        };
        assert_eq!(index.enter(&step.then, "a").map(|s| s.as_str()), Some("b"));
        let otherwise = step.otherwise.as_ref().unwrap();
        assert_eq!(index.enter(otherwise, "a").map(|s| s.as_str()), Some("c"));
    }

    #[test]
    fn on_error_steps_are_indexed_and_fall_through_after_their_action() {
        let src = "id: t\nversion: 1\ntriggers: [{manual: true}]\nsteps:\n  - id: send\n    action: wecom.notify_staff\n    params: {touser: a, text: hi}\n    on_error:\n      - id: note\n        set: {failed: \"{{ error.kind }}\"}\n  - id: c\n    end: completed\n";
        let loaded = crate::load(src, None);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let index = loaded.playbook.index();
        assert_eq!(index.len(), 3);
        assert_eq!(index.after("note").map(|s| s.as_str()), Some("c"));
        let StepKind::Action(action) = &index.get("send").unwrap().kind else {
            panic!("not an action")
        };
        let on_error = action.on_error.as_ref().expect("on_error read");
        assert_eq!(
            index.enter(on_error, "send").map(|s| s.as_str()),
            Some("note")
        );
        // The serde form is the YAML form: it reads back to the same model.
        let yaml = serde_yaml::to_string(&loaded.playbook).unwrap();
        assert!(yaml.contains("on_error:"), "{yaml}");
        let back: crate::Playbook = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, loaded.playbook);
    }

    #[test]
    fn cron_triggers_read_their_missed_fire_policy() {
        use crate::model::{MissedFirePolicy, Trigger};
        let src = "id: t\nversion: 1\ntriggers:\n  - cron: \"0 10 * * *\"\n    missed: catch_up_once\n  - cron: \"0 18 * * *\"\n    missed: skip\n  - cron: \"0 20 * * *\"\naudience:\n  target: contacts\n  tags_any: [vip]\nsteps:\n  - id: c\n    end: completed\n";
        let loaded = crate::load(src, None);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let missed: Vec<Option<MissedFirePolicy>> = loaded
            .playbook
            .triggers
            .iter()
            .map(|t| match t {
                Trigger::Cron(c) => c.missed,
                _ => panic!("not cron"),
            })
            .collect();
        assert_eq!(
            missed,
            [
                Some(MissedFirePolicy::CatchUpOnce),
                Some(MissedFirePolicy::Skip),
                None
            ]
        );
        let yaml = serde_yaml::to_string(&loaded.playbook).unwrap();
        assert!(yaml.contains("missed: catch_up_once"), "{yaml}");
        assert_eq!(MissedFirePolicy::CatchUpOnce.as_str(), "catch_up_once");
    }
}
