//! Opt-out / opt-in keywords in a contact's own messages ("TD", "退订").

use std::collections::BTreeMap;

use crate::config::ConsentConfig;
use crate::error::PolicyError;

/// What a contact's message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentChange {
    /// Stop marketing to me; `keyword` is the configured keyword that matched.
    OptOut { keyword: String },
    /// Marketing is welcome again.
    OptIn { keyword: String },
}

/// The opt-out and opt-in keywords of a [`ConsentConfig`], matched against whole messages
/// (normalised keyword → (is opt-out, keyword as configured)).
#[derive(Debug)]
pub struct Keywords {
    words: BTreeMap<String, (bool, String)>,
}

impl Keywords {
    /// Fails on an empty keyword or one that is both opt-out and opt-in.
    pub fn new(config: &ConsentConfig) -> Result<Self, PolicyError> {
        let mut words = BTreeMap::new();
        let lists = [
            (true, &config.opt_out_keywords),
            (false, &config.opt_in_keywords),
        ];
        for (out, list) in lists {
            for word in list {
                let key = normalize(word);
                if key.is_empty() {
                    return Err(PolicyError::Consent(format!(
                        "keyword `{word}` is empty once spaces and punctuation are removed"
                    )));
                }
                if let Some((other, _)) = words.insert(key, (out, word.clone()))
                    && other != out
                {
                    return Err(PolicyError::Consent(format!(
                        "`{word}` is both an opt-out and an opt-in keyword"
                    )));
                }
            }
        }
        Ok(Self { words })
    }

    /// The whole message must be the keyword: "我不想退订" is not an opt-out.
    pub fn match_text(&self, text: &str) -> Option<ConsentChange> {
        let (out, keyword) = self.words.get(&normalize(text))?;
        let keyword = keyword.clone();
        Some(if *out {
            ConsentChange::OptOut { keyword }
        } else {
            ConsentChange::OptIn { keyword }
        })
    }
}

/// Full-width ASCII folded to ASCII, ASCII upper-cased, whitespace and punctuation dropped.
fn normalize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation() && !is_cjk_punctuation(*c))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn is_cjk_punctuation(c: char) -> bool {
    matches!(c, '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}' | '\u{2018}'..='\u{201F}' | '\u{2026}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords() -> Keywords {
        Keywords::new(&ConsentConfig::default()).unwrap()
    }

    #[test]
    fn matches_whole_messages_loosely_written() {
        let k = keywords();
        let out = |w: &str| Some(ConsentChange::OptOut { keyword: w.into() });
        assert_eq!(k.match_text("TD"), out("TD"));
        assert_eq!(k.match_text(" td "), out("TD"));
        assert_eq!(k.match_text("ＴＤ"), out("TD"));
        assert_eq!(k.match_text("退订。"), out("退订"));
        assert_eq!(k.match_text("「退订」!"), out("退订"));
        assert_eq!(
            k.match_text("订阅"),
            Some(ConsentChange::OptIn {
                keyword: "订阅".into()
            })
        );
        assert_eq!(k.match_text("我不想退订"), None);
        assert_eq!(k.match_text("TDD"), None);
        assert_eq!(k.match_text(""), None);
    }

    #[test]
    fn refuses_bad_keyword_lists() {
        let both = ConsentConfig {
            opt_out_keywords: vec!["stop".into()],
            opt_in_keywords: vec!["STOP!".into()],
        };
        assert!(matches!(Keywords::new(&both), Err(PolicyError::Consent(_))));
        let empty = ConsentConfig {
            opt_out_keywords: vec!["。".into()],
            opt_in_keywords: vec![],
        };
        assert!(matches!(
            Keywords::new(&empty),
            Err(PolicyError::Consent(_))
        ));
    }
}
