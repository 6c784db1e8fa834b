//! `flow:` parses into the model, and bad values get SOP0057 at their position.

use sop_dsl::render::render_human;
use sop_dsl::{Code, load};

const HEAD: &str = "id: f\nversion: 1\ntriggers:\n  - event: wecom.message_received\n";
const TAIL: &str = "steps:\n  - id: pause\n    wait: 5m\n";

fn errors(flow: &str) -> Vec<String> {
    let src = format!("{HEAD}{flow}{TAIL}");
    load(&src, None)
        .diagnostics
        .iter()
        .filter(|d| d.code != Code::CatalogSkipped)
        .map(|d| {
            render_human(d, "f.yaml", &src)
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn a_full_flow_loads() {
    let src = format!(
        "{HEAD}flow:\n  key: \"{{{{ contact.owner }}}}\"\n  concurrency: 1\n  throttle: {{ limit: 10, per: 1m }}\n  rate_limit: {{ limit: 1, per: 1h }}\n  debounce: {{ period: 5m, max_delay: 30m }}\n{TAIL}"
    );
    let loaded = load(&src, None);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let flow = loaded.playbook.flow.clone().expect("flow");
    assert_eq!(flow.key.unwrap().0, "{{ contact.owner }}");
    assert_eq!(flow.concurrency, Some(1));
    let throttle = flow.throttle.unwrap();
    assert_eq!((throttle.limit, throttle.per.as_seconds()), (10, 60));
    assert_eq!(flow.rate_limit.unwrap().per.as_seconds(), 3600);
    let debounce = flow.debounce.unwrap();
    assert_eq!(debounce.period.as_seconds(), 300);
    assert_eq!(debounce.max_delay.unwrap().as_seconds(), 1800);
    // The serde form is the YAML form.
    let yaml = serde_yaml::to_string(&loaded.playbook).unwrap();
    assert!(yaml.contains("max_delay: 30m"), "{yaml}");
}

#[test]
fn zero_limits_are_sop0057_at_the_value() {
    assert_eq!(
        errors("flow:\n  concurrency: 0\n"),
        ["f.yaml:6:16: error[SOP0057]: `concurrency` is zero"]
    );
    assert_eq!(
        errors("flow:\n  throttle: { limit: 0, per: 1m }\n"),
        ["f.yaml:6:22: error[SOP0057]: `throttle.limit` is zero"]
    );
}

#[test]
fn max_delay_shorter_than_period_is_sop0057() {
    assert_eq!(
        errors("flow:\n  debounce: { period: 10m, max_delay: 5m }\n"),
        ["f.yaml:6:39: error[SOP0057]: `max_delay` (5m) is shorter than `period` (10m)"]
    );
}

#[test]
fn key_reading_the_run_is_sop0057_and_syntax_errors_are_sop0020() {
    assert_eq!(
        errors("flow:\n  key: \"{{ run.id }}\"\n  concurrency: 1\n"),
        [
            "f.yaml:6:8: error[SOP0057]: the flow key reads `run`, which does not exist before a run starts"
        ]
    );
    let syntax = errors("flow:\n  key: \"{{ contact.id \"\n  concurrency: 1\n");
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].contains("error[SOP0020]"), "{syntax:?}");
}

#[test]
fn unknown_fields_and_empty_flow() {
    assert_eq!(
        errors("flow:\n  rate_limit: { limit: 1, pre: 1h }\n"),
        [
            "f.yaml:6:17: error[SOP0012]: rate_limit needs `per`",
            "f.yaml:6:27: error[SOP0010]: unknown key `pre` in rate_limit"
        ]
    );
    assert_eq!(
        errors("flow:\n  key: \"{{ contact.owner }}\"\n"),
        ["f.yaml:6:3: error[SOP0057]: `flow` sets no control"]
    );
}

#[test]
fn concurrency_above_one_per_subject_warns() {
    assert_eq!(
        errors("flow:\n  concurrency: 3\n"),
        [
            "f.yaml:6:16: warning[SOP0058]: `concurrency: 3` per subject, but `entry.one_active_run` allows one live run per subject"
        ]
    );
    assert!(errors("entry: { one_active_run: false }\nflow:\n  concurrency: 3\n").is_empty());
}
