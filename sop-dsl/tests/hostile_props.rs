//! Hostile playbooks: mutations of the bundled playbooks, and the classic attacks on YAML and
//! templates, load to diagnostics, never a panic, a hang or unbounded memory. (Arbitrary
//! bytes and token soups are in `loader_props.rs`; the YAML limits' unit tests in
//! `src/syntax/mod.rs`.)
//!
//! Cases per property: 48, or `PROPTEST_CASES` for longer runs by hand.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use sop_dsl::{Catalog, Code, load};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    ProptestConfig::with_cases(cases)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::load_dir(&root().join("playbooks/plugins")).unwrap())
}

/// The bundled playbooks' text.
fn bundled() -> &'static [String] {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let mut paths: Vec<_> = std::fs::read_dir(root().join("playbooks"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        paths.sort();
        assert!(paths.len() >= 6, "bundled playbooks not found");
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    })
}

/// Pieces that mean something to YAML or to templates, to splice into a playbook.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: *a\n".to_owned()),
        Just("!!binary ".to_owned()),
        Just("!custom ".to_owned()),
        Just("{{ ".to_owned()),
        Just(" }}".to_owned()),
        Just("{% for x in range(100000) %}".to_owned()),
        Just("{% endfor %}".to_owned()),
        Just("{{ contact.name * 100000000 }}".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("[".to_owned()),
        Just("{".to_owned()),
        Just("\t".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("\u{0}".to_owned()),
        Just("goto: nowhere\n".to_owned()),
        Just("wait: 99999999999999d\n".to_owned()),
        ".{0,12}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_bundled_playbooks_load_to_diagnostics(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), 0u8..3, fragment(), 0usize..40),
            1..6,
        ),
    ) {
        let mut text = bundled()[which.index(bundled().len())].clone();
        for (at, op, fragment, len) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match op {
                // Delete a run of characters.
                0 => {
                    let end = text[i..].char_indices().nth(len).map_or(text.len(), |(j, _)| i + j);
                    text.replace_range(i..end, "");
                }
                // Insert a fragment.
                1 => text.insert_str(i, &fragment),
                // Duplicate a line (repeated keys, steps, anchors).
                _ => {
                    let start = text[..i].rfind('\n').map_or(0, |n| n + 1);
                    let end = text[i..].find('\n').map_or(text.len(), |n| i + n + 1);
                    let line = text[start..end].to_owned();
                    text.insert_str(start, &line);
                }
            }
        }
        let loaded = load(&text, Some(catalog()));
        for d in &loaded.diagnostics {
            prop_assert!(d.primary.span.end <= text.len(), "span past the end: {d:?}");
            prop_assert!(!d.message.is_empty());
        }
    }
}

fn codes(src: &str) -> Vec<Code> {
    load(src, Some(catalog()))
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

#[test]
fn a_hundred_thousand_open_brackets_are_a_diagnostic() {
    for open in ["[", "{", "- "] {
        let src = format!("id: x\nsteps: {}", open.repeat(100_000));
        let found = codes(&src);
        assert!(
            found.contains(&Code::NestingTooDeep) || found.contains(&Code::YamlSyntax),
            "{open}: {found:?}"
        );
    }
}

#[test]
fn deeply_nested_template_expressions_are_a_diagnostic() {
    // minijinja's parser stops at its own depth limit; the checker reports it.
    let deep = format!("{}1{}", "(".repeat(50_000), ")".repeat(50_000));
    let src = format!(
        "id: t\nversion: 1\ntriggers: [{{manual: true}}]\nsteps:\n  - id: a\n    if: \"{deep}\"\n    then: [{{end: completed}}]\n"
    );
    let loaded = load(&src, Some(catalog()));
    assert!(loaded.has_errors(), "{:?}", loaded.diagnostics);
}

#[test]
fn a_huge_template_is_refused_before_parsing() {
    // Just under the file limit the checker compiles it; over it, nothing is parsed.
    let body = "{{ contact.name }}".repeat(40_000);
    let src = format!(
        "id: t\nversion: 1\ntriggers: [{{manual: true}}]\nsteps:\n  - id: a\n    if: \"contact.name == '{body}'\"\n    then: [{{end: completed}}]\n"
    );
    assert!(src.len() < sop_dsl::syntax::MAX_BYTES);
    let _ = load(&src, Some(catalog()));
    let over = format!("{src}# {}\n", "x".repeat(sop_dsl::syntax::MAX_BYTES));
    assert_eq!(codes(&over), [Code::InputTooLarge]);
}

#[test]
fn aliases_of_mappings_cannot_multiply_a_playbook() {
    // Billion laughs with mappings, through the whole loader (parser and checker).
    let mut src = String::from(
        "id: t\nx0: &x0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}\n",
    );
    for i in 1..8 {
        let p = i - 1;
        src.push_str(&format!(
            "x{i}: &x{i} [*x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}]\n"
        ));
    }
    src.push_str("steps: *x7\n");
    assert!(codes(&src).contains(&Code::AliasLimit), "{:?}", codes(&src));
}
