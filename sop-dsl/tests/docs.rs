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
