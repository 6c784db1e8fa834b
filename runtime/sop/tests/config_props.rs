//! Hostile configuration text: whatever the file holds, loading it is a configuration or an
//! error naming the problem, never a panic. (The explicit cases, invalid UTF-8 and deep
//! nesting, are in `config.rs`.)
//!
//! Cases per property: 64, or `PROPTEST_CASES` for longer runs by hand.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sop::config::Config;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

fn sample() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sop.example.toml"))
        .unwrap()
}

fn load(text: &str) -> Result<Config, String> {
    Config::from_text(text, Path::new("sop.toml"), Path::new("/nonexistent/sop"))
        .map_err(|e| e.to_string())
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("[[".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(" = ".to_owned()),
        Just("\"".to_owned()),
        Just("'''".to_owned()),
        Just("0x7fffffffffffffff".to_owned()),
        Just("-1".to_owned()),
        Just("1e999".to_owned()),
        Just("nan".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("{ env = \"SOP_CONFIG_PROPS_UNSET\" }".to_owned()),
        Just("{ file = \"/nonexistent\" }".to_owned()),
        Just("[tenants.t.accounts.a]\nplugin = \"wecom\"\n".to_owned()),
        Just("[plugin.wecom.limits]\n".to_owned()),
        Just("\u{0}".to_owned()),
        "[a-z_.]{1,12}",
        ".{0,10}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_a_config_or_an_error(text in ".{0,400}") {
        let _ = load(&text);
    }

    #[test]
    fn mutated_sample_configs_are_a_config_or_a_named_error(
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<bool>(), fragment(), 0usize..30),
            1..6,
        ),
    ) {
        let mut text = sample();
        for (at, insert, fragment, len) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            if insert {
                text.insert_str(i, &fragment);
            } else {
                let end = text[i..].char_indices().nth(len).map_or(text.len(), |(j, _)| i + j);
                text.replace_range(i..end, "");
            }
        }
        if let Err(e) = load(&text) {
            prop_assert!(e.starts_with("sop.toml"), "the error names the file: {e}");
        }
    }
}
