//! Every broken playbook in `fixtures/invalid/` with its rendered diagnostics as a snapshot.
//! Checked against the bundled plugin manifests, so plugin checks run too.

use std::path::{Path, PathBuf};

use sop_dsl::render::render_human;
use sop_dsl::{Catalog, Severity, load};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bundled manifests, and the demo daemon's accounts (as `sop run` gives the checker).
fn catalog() -> Catalog {
    let mut catalog = Catalog::load_dir(&root().join("playbooks/plugins"))
        .expect("bundled plugin manifests load");
    let account = |id: &str, plugin: &str| (id.to_string(), plugin.to_string());
    catalog.accounts = Some(
        [
            (
                "demo-brand".to_string(),
                [
                    account("demo-wecom", "wecom"),
                    account("demo-douyin", "douyin"),
                ]
                .into(),
            ),
            (
                "other-brand".to_string(),
                [account("other-brand-wecom", "wecom")].into(),
            ),
        ]
        .into(),
    );
    catalog
}

#[test]
fn invalid_fixtures() {
    let catalog = catalog();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 40, "only {} fixtures", paths.len());
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let loaded = load(&src, Some(&catalog));
        assert!(
            loaded
                .diagnostics
                .iter()
                .any(|d| d.severity >= Severity::Warning),
            "{name}: expected at least one error or warning"
        );
        let file = format!("{name}.yaml");
        let rendered: String = loaded
            .diagnostics
            .iter()
            .map(|d| render_human(d, &file, &src))
            .collect::<Vec<_>>()
            .join("\n");
        insta::with_settings!({ snapshot_path => "snapshots/invalid", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}

#[test]
fn without_a_catalog_plugin_checks_are_skipped_with_one_note() {
    let src = std::fs::read_to_string(root().join("playbooks/welcome.yaml")).unwrap();
    let loaded = load(&src, None);
    let notes: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == sop_dsl::Code::CatalogSkipped)
        .collect();
    assert_eq!(notes.len(), 1);
    assert!(!loaded.has_errors());
}

/// The bundled Douyin playbook alerts through the tenant's WeCom account: it checks against
/// the demo daemon's accounts, and the same step with a typo does not.
#[test]
fn an_action_account_is_checked_against_the_tenants_accounts() {
    let src = std::fs::read_to_string(root().join("playbooks/douyin-dm.yaml")).unwrap();
    let catalog = catalog();
    let loaded = load(&src, Some(&catalog));
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let typo = src.replace("account: demo-wecom", "account: demo-wecon");
    let loaded = load(&typo, Some(&catalog));
    let codes: Vec<_> = loaded.diagnostics.iter().map(|d| d.code).collect();
    assert!(codes.contains(&sop_dsl::Code::UnknownAccount), "{codes:?}");
}
