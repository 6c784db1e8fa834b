//! The bundled playbooks validate cleanly, and their model round-trips through serde.

use std::path::{Path, PathBuf};

use sop_dsl::render::render_human;
use sop_dsl::{Catalog, Playbook, load};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bundled() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("playbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn all_six_stories_validate_without_any_diagnostic() {
    let catalog = Catalog::load_dir(&root().join("playbooks/plugins")).unwrap();
    let playbooks = bundled();
    let names: Vec<&str> = playbooks.iter().map(|(n, _)| n.as_str()).collect();
    for story in [
        "welcome.yaml",
        "group-nurture.yaml",
        "live-reminder.yaml",
        "reactivation.yaml",
        "douyin-dm.yaml",
        "order-points.yaml",
        "welcome-members.yaml",
    ] {
        assert!(names.contains(&story), "missing {story}");
    }
    for (name, src) in &playbooks {
        let loaded = load(src, Some(&catalog));
        let shown: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| render_human(d, name, src))
            .collect();
        assert!(shown.is_empty(), "{name}:\n{}", shown.join("\n"));
        assert_eq!(format!("{}.yaml", loaded.playbook.id), *name);
    }
}

#[test]
fn checked_model_serializes_back_to_a_playbook_that_checks_the_same() {
    for (name, src) in bundled() {
        let first = load(&src, None).playbook;
        // serde_yaml stores the model in the format operators write; reading it back gives the same model.
        let yaml = serde_yaml::to_string(&first).unwrap();
        let again = load(&yaml, None);
        assert!(
            !again.has_errors(),
            "{name}: {:?}\n{yaml}",
            again.diagnostics
        );
        assert_eq!(again.playbook, first, "{name}");
        let json = serde_json::to_string(&first).unwrap();
        let back: Playbook = serde_json::from_str(&json).unwrap();
        assert_eq!(back, first, "{name}");
    }
}

#[test]
fn reactivation_steps_continue_as_the_checker_assumes() {
    let src = std::fs::read_to_string(root().join("playbooks/reactivation.yaml")).unwrap();
    let playbook = load(&src, None).playbook;
    let index = playbook.index();
    let after = |id: &str| index.after(id).map(|s| s.as_str().to_string());
    // Both A/B arms continue with the first wait after the split.
    assert_eq!(after("touch_30").as_deref(), Some("wait_reply_1"));
    assert_eq!(after("touch_20").as_deref(), Some("wait_reply_1"));
    assert_eq!(after("alert_owner").as_deref(), Some("done_reactivated"));
    assert_eq!(after("late_reply"), None);
}
