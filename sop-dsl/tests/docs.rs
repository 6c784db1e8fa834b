//! Every diagnostic code has a page in docs/errors, and the committed JSON Schema is current.

use std::path::{Path, PathBuf};

use sop_dsl::Code;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_code_has_a_doc_page_with_its_title() {
    let mut missing = Vec::new();
    for code in Code::ALL {
        let path = root().join(code.doc_path());
        match std::fs::read_to_string(&path) {
            Ok(text) => assert!(
                text.starts_with(&format!("# {code}: {}", code.title())),
                "{} must start with `# {code}: {}`",
                path.display(),
                code.title()
            ),
            Err(_) => missing.push(code.to_string()),
        }
    }
    assert!(missing.is_empty(), "no docs/errors page for {missing:?}");
}

#[test]
fn committed_schema_is_current() {
    let path = root().join("docs/playbook.schema.json");
    let expected = serde_json::to_string_pretty(&sop_dsl::json_schema()).unwrap() + "\n";
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "docs/playbook.schema.json is stale: run `sop schema > docs/playbook.schema.json`"
    );
}

/// Every key of the format (every property in the JSON Schema) is shown in the reference.
#[test]
fn reference_mentions_every_key_of_the_schema() {
    fn keys(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| keys(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }
    let mut all = std::collections::BTreeSet::new();
    keys(&sop_dsl::json_schema(), &mut all);
    let reference = std::fs::read_to_string(root().join("docs/playbooks.md")).unwrap();
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| !reference.contains(&format!("{k}:")) && !reference.contains(&format!("`{k}`")))
        .collect();
    assert!(all.len() > 30, "schema has only {} keys", all.len());
    assert!(
        missing.is_empty(),
        "docs/playbooks.md does not show {missing:?}"
    );
}
