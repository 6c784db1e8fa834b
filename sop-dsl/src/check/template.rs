//! Templates and conditions: compiled with minijinja at load time, variables checked.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::code::Code;
use crate::diagnostic::{Diagnostic, suggestion};
use crate::model::{Expression, Template};
use crate::syntax::Node;

use super::Ctx;

/// The variables a template or condition sees at run time.
/// `error` is the failure an action step's `on_error` branch handles.
pub const VARIABLES: &[&str] = &[
    "contact", "event", "run", "steps", "group", "playbook", "error",
];

/// minijinja's own global functions, which are not playbook variables.
const BUILTINS: &[&str] = &["range", "dict", "namespace", "debug"];

impl Ctx<'_> {
    /// A template string; the node must be a string.
    pub fn template(&mut self, node: &Node, what: &str) -> Option<Template> {
        let text = self.string(node, what)?;
        self.compile_template(&text, node).then_some(Template(text))
    }

    /// Compiles `text` (the content of `node`) as a template; false on a syntax error.
    pub fn compile_template(&mut self, text: &str, node: &Node) -> bool {
        let result = self
            .env
            .template_from_str(text)
            .map(|t| t.undeclared_variables(false));
        self.compiled(result, node, Code::TemplateSyntax, "template")
    }

    /// A condition; the node must be a string.
    pub fn expression(&mut self, node: &Node, what: &str) -> Option<Expression> {
        let text = self.string(node, what)?;
        if text.trim().is_empty() {
            self.push(Diagnostic::new(
                Code::ExpressionSyntax,
                node.span.clone(),
                format!("{what} is empty"),
            ));
            return None;
        }
        let result = self
            .env
            .compile_expression(&text)
            .map(|e| e.undeclared_variables(false));
        self.compiled(result, node, Code::ExpressionSyntax, "condition")
            .then_some(Expression(text))
    }

    fn compiled(
        &mut self,
        result: Result<std::collections::HashSet<String>, minijinja::Error>,
        node: &Node,
        code: Code,
        what: &str,
    ) -> bool {
        match result {
            Err(err) => {
                let span = inner_span(node, err.range());
                let detail = err.detail().unwrap_or("syntax error").to_string();
                self.push(Diagnostic::new(
                    code,
                    span,
                    format!("{what} syntax error: {detail}"),
                ));
                false
            }
            Ok(names) => {
                let names: BTreeSet<String> = names.into_iter().collect();
                if names.contains("event") {
                    self.event_uses.push(variable_span(node, "event"));
                }
                if names.contains("error") {
                    self.error_uses.push(variable_span(node, "error"));
                }
                for name in names {
                    if VARIABLES.contains(&name.as_str()) || BUILTINS.contains(&name.as_str()) {
                        continue;
                    }
                    let mut d = Diagnostic::new(
                        Code::UnknownVariable,
                        variable_span(node, &name),
                        format!("unknown variable `{name}` in {what}"),
                    )
                    .with_help(format!("{what}s see: {}", VARIABLES.join(", ")));
                    if let Some(s) = suggestion(&name, VARIABLES.iter().copied()) {
                        d = d.with_label(s);
                    }
                    self.push(d);
                }
                true
            }
        }
    }
}

impl Ctx<'_> {
    /// `error` only has a value in a run that took an `on_error` branch: without any, a
    /// template reading it always sees it undefined.
    pub fn warn_error_without_on_error(&mut self) {
        if self.has_on_error {
            return;
        }
        if let Some(span) = self.error_uses.first().cloned() {
            self.push(
                Diagnostic::new(
                    Code::ErrorWithoutOnError,
                    span,
                    "`error` is used, but no action step has `on_error`",
                )
                .with_help(
                    "`error` is the failure an `on_error` branch handles; add `on_error:` to the action whose failure you mean",
                ),
            );
        }
    }
}

/// Maps a range inside the string's text to the file, when the text is verbatim in the file.
fn inner_span(node: &Node, range: Option<Range<usize>>) -> Range<usize> {
    match (node.verbatim_at, range) {
        (Some(at), Some(r)) if at + r.end <= node.span.end => {
            let end = if r.end > r.start {
                at + r.end
            } else {
                at + r.start + 1
            };
            at + r.start..end.min(node.span.end)
        }
        _ => node.span.clone(),
    }
}

/// The first place the variable name appears in the string, or the whole string.
fn variable_span(node: &Node, name: &str) -> Range<usize> {
    match (node.verbatim_at, node.as_str()) {
        (Some(at), Some(text)) => text
            .match_indices(name)
            .find(|(i, _)| {
                let before = text[..*i].chars().next_back();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
            })
            .map_or(node.span.clone(), |(i, _)| at + i..at + i + name.len()),
        _ => node.span.clone(),
    }
}
