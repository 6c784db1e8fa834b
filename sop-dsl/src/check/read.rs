//! Reading typed values out of spanned nodes, reporting every problem and carrying on.

use std::ops::Range;
use std::str::FromStr;

use crate::code::Code;
use crate::diagnostic::{Diagnostic, suggestion};
use crate::model::{Duration, QualifiedName};
use crate::syntax::{Node, Value};

use super::Ctx;

/// A mapping whose keys were checked against the allowed ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Map<'n> {
    pub node: &'n Node,
    entries: &'n [(Node, Node)],
}

impl<'n> Map<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k.span.clone())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Where to point when a key is missing: the mapping's first key.
    pub fn head(&self) -> Range<usize> {
        match self.entries.first() {
            Some((key, _)) => key.span.clone(),
            None => self.node.span.start..self.node.span.start + 1,
        }
    }
}

/// Matches "expected X, found Y" wording.
fn found(node: &Node) -> String {
    format!("found {}", node.type_name())
}

impl Ctx<'_> {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// A mapping whose keys are all in `allowed`; reports unknown and non-string keys.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Map<'n>> {
        let Some(entries) = node.as_map() else {
            self.wrong_type(node, &format!("a mapping for {what}"));
            return None;
        };
        for (key, _) in entries {
            match key.as_str() {
                None => self.push(Diagnostic::new(
                    Code::WrongType,
                    key.span.clone(),
                    format!("keys must be strings, {}", found(key)),
                )),
                Some(k) if !allowed.contains(&k) => self.unknown_key(key, k, what, allowed),
                Some(_) => {}
            }
        }
        Some(Map { node, entries })
    }

    pub fn unknown_key(&mut self, key: &Node, name: &str, what: &str, allowed: &[&str]) {
        let mut d = Diagnostic::new(
            Code::UnknownKey,
            key.span.clone(),
            format!("unknown key `{name}` in {what}"),
        );
        if let Some(s) = suggestion(name, allowed.iter().copied()) {
            d = d.with_label(s);
        }
        d = d.with_help(format!("{what} takes: {}", allowed.join(", ")));
        self.push(d);
    }

    pub fn wrong_type(&mut self, node: &Node, expected: &str) {
        let mut d = Diagnostic::new(
            Code::WrongType,
            node.span.clone(),
            format!("expected {expected}, {}", found(node)),
        );
        if expected.starts_with("a string")
            && matches!(node.value, Value::Int(_) | Value::Float(_) | Value::Bool(_))
        {
            d = d.with_help("put it in quotes to make it text");
        }
        self.push(d);
    }

    /// A required key; reports it missing (with `code`) at the head of the mapping.
    pub fn require<'n>(&mut self, map: &Map<'n>, key: &str, what: &str) -> Option<&'n Node> {
        let node = map.get(key);
        if node.is_none() {
            self.push(Diagnostic::new(
                Code::MissingKey,
                map.head(),
                format!("{what} needs `{key}`"),
            ));
        }
        node
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong_type(node, &format!("a string for {what}"));
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, &format!("true or false for {what}"));
                if let Some(word) = node.as_str().filter(|w| {
                    ["yes", "no", "on", "off", "y", "n"].contains(&w.to_lowercase().as_str())
                }) {
                    let fix = if ["yes", "on", "y"].contains(&word.to_lowercase().as_str()) {
                        "true"
                    } else {
                        "false"
                    };
                    if let Some(last) = self.diagnostics.last_mut() {
                        last.help = Some(format!("YAML 1.2 reads `{word}` as text; write `{fix}`"));
                    }
                }
                None
            }
        }
    }

    pub fn integer(
        &mut self,
        node: &Node,
        what: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        match node.value {
            Value::Int(i) if range.contains(&i) => Some(i),
            Value::Int(i) => {
                self.push(Diagnostic::new(
                    Code::InvalidValue,
                    node.span.clone(),
                    format!(
                        "{what} must be between {} and {}, not {i}",
                        range.start(),
                        range.end()
                    ),
                ));
                None
            }
            _ => {
                self.wrong_type(node, &format!("a whole number for {what}"));
                None
            }
        }
    }

    /// A string parsed with `FromStr`; a parse error is reported with `code`.
    pub fn parsed<T: FromStr<Err = String>>(
        &mut self,
        node: &Node,
        what: &str,
        code: Code,
    ) -> Option<T> {
        let text = self.string(node, what)?;
        match text.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(Diagnostic::new(
                    code,
                    node.span.clone(),
                    format!("invalid {what}: {e}"),
                ));
                None
            }
        }
    }

    /// A duration; `0s` is refused because a zero wait or timeout is always a mistake.
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let d: Duration = match node.value {
            Value::Int(_) => {
                self.push(
                    Diagnostic::new(
                        Code::BadDuration,
                        node.span.clone(),
                        format!("{what} has no unit"),
                    )
                    .with_help("write the unit, e.g. `30s`, `5m`, `2h`, `1d`"),
                );
                return None;
            }
            _ => {
                let text = self.string(node, what)?;
                match text.parse() {
                    Ok(d) => d,
                    Err(e) => {
                        self.push(
                            Diagnostic::new(
                                Code::BadDuration,
                                node.span.clone(),
                                format!("invalid {what}: {e}"),
                            )
                            .with_help(
                                "durations look like `30s`, `5m`, `2h`, `1d`, `1w` or `1h30m`",
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        if d.as_seconds() == 0 {
            self.push(Diagnostic::new(
                Code::ZeroDuration,
                node.span.clone(),
                format!("{what} is zero"),
            ));
            return None;
        }
        if d.as_seconds() > 366 * 86_400 {
            self.push(
                Diagnostic::new(
                    Code::SuspiciousDuration,
                    node.span.clone(),
                    format!("{what} is longer than a year ({d})"),
                )
                .with_help("runs this long are rarely intended; check the unit"),
            );
        }
        Some(d)
    }

    /// One of a fixed set of words.
    pub fn choice<'c>(&mut self, node: &Node, what: &str, options: &[&'c str]) -> Option<&'c str> {
        let text = self.string(node, what)?;
        if let Some(o) = options.iter().find(|o| **o == text) {
            return Some(o);
        }
        let mut d = Diagnostic::new(
            Code::InvalidValue,
            node.span.clone(),
            format!("`{text}` is not a valid {what}"),
        )
        .with_help(format!("use one of: {}", options.join(", ")));
        if let Some(s) = suggestion(&text, options.iter().copied()) {
            d = d.with_label(s);
        }
        self.push(d);
        None
    }

    /// One string or a list of strings; empty lists are refused.
    pub fn string_list(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        if let Some(s) = node.as_str() {
            return Some(vec![s.to_string()]);
        }
        let Some(items) = node.as_seq() else {
            self.wrong_type(node, &format!("a string or a list of strings for {what}"));
            return None;
        };
        if items.is_empty() {
            self.push(Diagnostic::new(
                Code::InvalidValue,
                node.span.clone(),
                format!("{what} is empty"),
            ));
            return None;
        }
        let strings: Vec<Option<String>> = items.iter().map(|i| self.string(i, what)).collect();
        strings.into_iter().collect()
    }

    /// `plugin.name`.
    pub fn qualified(&mut self, node: &Node, what: &str) -> Option<QualifiedName> {
        let text = self.string(node, what)?;
        let valid_part = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        match text.split_once('.') {
            Some((plugin, name)) if valid_part(plugin) && valid_part(name) => {
                Some(QualifiedName(text))
            }
            _ => {
                self.push(
                    Diagnostic::new(Code::BadEventType, node.span.clone(), format!("`{text}` is not a valid {what}"))
                        .with_help(format!("write {what}s as `plugin.name` in lowercase, e.g. `wecom.send_welcome` or `wecom.contact_added`")),
                );
                None
            }
        }
    }

    /// An identifier (playbook id, step id, attribute name).
    pub fn identifier(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.string(node, what)?;
        let ok = text.len() <= 64
            && text
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            self.push(
                Diagnostic::new(Code::BadIdentifier, node.span.clone(), format!("`{text}` is not a valid {what}"))
                    .with_help("use up to 64 ASCII letters, digits, `_` and `-`, starting with a letter or digit"),
            );
            return None;
        }
        Some(text)
    }
}
