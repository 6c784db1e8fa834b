//! Parsing: YAML text to a tree of spanned nodes, never failing.
//!
//! serde_yaml (which our user named) does not report spans for values, and its author declined
//! to add them, so semantic errors could only point at the file. We build the tree ourselves
//! from yaml-rust2's event parser, whose events carry source positions. That also lets us
//! enforce limits serde_yaml does not have: input size, nesting depth, alias expansion
//! (billion laughs) and duplicate keys. serde_yaml stays the oracle that this tree must agree
//! with (see the property tests) and the format used to store a checked playbook.

mod node;
mod scalar;

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

pub use node::{Node, ScalarStyle, Value};

use crate::code::Code;
use crate::diagnostic::Diagnostic;

/// Largest accepted playbook file.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Deepest accepted nesting of lists and mappings.
pub const MAX_DEPTH: usize = 64;
/// Most nodes that aliases may add to the tree, in total.
pub const MAX_ALIAS_NODES: usize = 10_000;

/// The parsed document. `root` is `None` when the text is empty or not well-formed YAML.
#[derive(Debug, Clone, Default)]
pub struct Ast {
    pub root: Option<Node>,
}

/// Parses YAML text into a spanned tree, reporting syntax errors and limit violations.
pub fn parse(src: &str) -> (Ast, Vec<Diagnostic>) {
    if src.len() > MAX_BYTES {
        let d = Diagnostic::new(
            Code::InputTooLarge,
            0..0,
            format!(
                "playbook is {} bytes; the limit is {MAX_BYTES} bytes",
                src.len()
            ),
        )
        .with_help("split it into several playbooks");
        return (Ast::default(), vec![d]);
    }
    let mut builder = Builder::new(src);
    let root = builder.run();
    (Ast { root }, builder.diagnostics)
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    src: &'a str,
    /// Byte offset of each line start.
    line_starts: Vec<usize>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    documents: usize,
    root: Option<Node>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn new(src: &'a str) -> Self {
        // A byte-order mark (Windows editors add one) is not part of the first key.
        let bom = src.len() - src.trim_start_matches('\u{feff}').len();
        let mut line_starts = vec![bom];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Builder {
            src,
            line_starts,
            stack: Vec::new(),
            anchors: HashMap::new(),
            alias_nodes: 0,
            documents: 0,
            root: None,
            diagnostics: Vec::new(),
        }
    }

    /// The byte offset of a marker. Computed from line and column: yaml-rust2's `index` counts
    /// characters, except inside block scalars where it counts bytes, so it drifts in
    /// non-ASCII files; lines are always right and columns restart on every line.
    fn offset(&self, mark: &Marker) -> usize {
        let Some(&start) = self.line_starts.get(mark.line().saturating_sub(1)) else {
            return self.src.len();
        };
        let line = &self.src[start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        start
            + line
                .char_indices()
                .nth(mark.col())
                .map_or(line.len(), |(i, _)| i)
    }

    fn run(&mut self) -> Option<Node> {
        let mut parser = Parser::new_from_str(&self.src[self.line_starts[0].min(self.src.len())..]);
        loop {
            let (event, mark) = match parser.next_token() {
                Ok(next) => next,
                Err(err) => {
                    let at = self.offset(err.marker());
                    self.diagnostics.push(
                        Diagnostic::new(Code::YamlSyntax, at..at, err.info().to_string())
                            .with_label("here")
                            .with_help("the mistake is often just before this point: an unclosed bracket or quote, a missing `:`, or a tab"),
                    );
                    return None;
                }
            };
            match self.event(event, &mark) {
                Step::Continue => {}
                Step::Done => return self.root.take(),
                Step::Abort => return None,
            }
        }
    }

    fn event(&mut self, event: Event, mark: &Marker) -> Step {
        let at = self.offset(mark);
        match event {
            Event::StreamEnd => return Step::Done,
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::MultipleDocuments,
                            at..at + 3.min(self.src.len() - at),
                            "a playbook file holds one YAML document",
                        )
                        .with_help("put each playbook in its own file"),
                    );
                    return Step::Abort;
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let (value, style) = match style {
                    TScalarStyle::Plain => (scalar::resolve_plain(&text), ScalarStyle::Plain),
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => (
                        Value::Str(text.clone(), ScalarStyle::Quoted),
                        ScalarStyle::Quoted,
                    ),
                    TScalarStyle::Literal | TScalarStyle::Folded => (
                        Value::Str(text.clone(), ScalarStyle::Block),
                        ScalarStyle::Block,
                    ),
                };
                let (end, verbatim) = scalar::extent(self.src, at, style, &text);
                let verbatim_at = matches!(value, Value::Str(..))
                    .then_some(verbatim)
                    .flatten();
                let node = Node {
                    value,
                    span: at..end,
                    verbatim_at,
                };
                return self.complete(node, anchor);
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    self.diagnostics.push(Diagnostic::new(
                        Code::YamlSyntax,
                        at..at + 1,
                        "alias to an unknown anchor",
                    ));
                    return Step::Abort;
                };
                self.alias_nodes += target.size();
                if self.alias_nodes > MAX_ALIAS_NODES {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::AliasLimit,
                            at..at + 1,
                            format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                        )
                        .with_help("write the repeated parts out, or reuse fewer anchors"),
                    );
                    return Step::Abort;
                }
                let mut node = target.clone();
                node.span = at..at + 1 + self.alias_name_len(at);
                node.verbatim_at = None;
                return self.complete(node, 0);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.diagnostics.push(Diagnostic::new(
                        Code::NestingTooDeep,
                        at..at + 1,
                        format!("lists and mappings are nested more than {MAX_DEPTH} deep"),
                    ));
                    return Step::Abort;
                }
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        start: at,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        start: at,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Step::Abort;
                };
                let end = self.trim_back(at);
                let (node, anchor) = match frame {
                    Frame::Seq {
                        start,
                        anchor,
                        items,
                    } => (Node::container(Value::Seq(items), start, end), anchor),
                    Frame::Map {
                        start,
                        anchor,
                        entries,
                        ..
                    } => (Node::container(Value::Map(entries), start, end), anchor),
                };
                return self.complete(node, anchor);
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
        }
        Step::Continue
    }

    /// Places a finished node into its parent (or as the root).
    fn complete(&mut self, node: Node, anchor: usize) -> Step {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Some((first, _)) = entries
                        .iter()
                        .find(|(e, _)| is_scalar(e) && is_scalar(&k) && e.value == k.value)
                    {
                        let d = Diagnostic::new(
                            Code::DuplicateKey,
                            k.span.clone(),
                            format!("duplicate key `{}`", k.key_text()),
                        )
                        .with_secondary(first.span.clone(), "first defined here")
                        .with_help("YAML keeps only one of them; remove or rename the other");
                        self.diagnostics.push(d);
                    }
                    entries.push((k, node));
                }
            },
        }
        Step::Continue
    }

    fn alias_name_len(&self, at: usize) -> usize {
        self.src[at..]
            .char_indices()
            .skip(1)
            .find(|(_, c)| c.is_whitespace() || matches!(c, ',' | ']' | '}'))
            .map_or(self.src.len() - at, |(i, _)| i)
            .saturating_sub(1)
    }

    /// Block collections end where the next token starts; pull the end back over blank space.
    fn trim_back(&self, at: usize) -> usize {
        let before = &self.src[..at];
        let trimmed = before.trim_end();
        if self.src[at..].starts_with([']', '}']) {
            at + 1
        } else {
            trimmed.len()
        }
    }
}

fn is_scalar(node: &Node) -> bool {
    !matches!(node.value, Value::Seq(_) | Value::Map(_))
}

impl Node {
    fn container(value: Value, start: usize, end: usize) -> Node {
        // Block mappings are marked after their first key; start at the first child instead.
        let first = match &value {
            Value::Seq(items) => items.first().map(|n| n.span.start),
            Value::Map(entries) => entries.first().map(|(k, _)| k.span.start),
            _ => None,
        };
        let start = first.map_or(start, |f| f.min(start));
        Node {
            value,
            span: start..end.max(start),
            verbatim_at: None,
        }
    }
}

enum Step {
    Continue,
    Done,
    Abort,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> Node {
        let (ast, diags) = parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        ast.root.unwrap()
    }

    #[test]
    fn spans_point_at_values() {
        let src = "id: 欢迎\nsteps:\n  - wait: 5m\n";
        let node = root(src);
        let id = node.get("id").unwrap();
        assert_eq!(&src[id.span.clone()], "欢迎");
        let step = &node.get("steps").unwrap().as_seq().unwrap()[0];
        assert_eq!(&src[step.get("wait").unwrap().span.clone()], "5m");
    }

    #[test]
    fn spans_stay_right_after_non_ascii_block_scalars() {
        let src = "a: >-\n  欢迎光临，新客户\n  第二行\nb:\n  c: d\n";
        let node = root(src);
        let c = node.get("b").unwrap().get("c").unwrap();
        assert_eq!(&src[c.span.clone()], "d");
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let src = "\u{feff}id: t\r\nb: c\r\n";
        let node = root(src);
        let id = node.as_map().unwrap()[0].0.clone();
        assert_eq!(id.as_str(), Some("id"));
        assert_eq!(&src[id.span.clone()], "id");
        assert_eq!(&src[node.get("b").unwrap().span.clone()], "c");
    }

    #[test]
    fn quoted_spans_include_quotes() {
        let src = "a: \"x y\"\nb: 'z'\n";
        let node = root(src);
        assert_eq!(&src[node.get("a").unwrap().span.clone()], "\"x y\"");
        assert_eq!(node.get("a").unwrap().verbatim_at, Some(4));
    }

    #[test]
    fn reports_duplicate_keys_with_both_places() {
        let (_, diags) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, Code::DuplicateKey);
        assert_eq!(diags[0].primary.span, 10..11);
        assert_eq!(diags[0].secondary[0].span, 0..1);
    }

    #[test]
    fn stops_billion_laughs() {
        let mut src = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            src.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let (ast, diags) = parse(&src);
        assert!(ast.root.is_none());
        assert_eq!(diags[0].code, Code::AliasLimit);
    }

    #[test]
    fn stops_deep_nesting() {
        let src = "[".repeat(10_000);
        let (ast, diags) = parse(&src);
        assert!(ast.root.is_none());
        assert!(!diags.is_empty());
        let block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let (_, diags) = parse(&block);
        assert_eq!(diags[0].code, Code::NestingTooDeep);
    }

    #[test]
    fn rejects_huge_input_without_parsing() {
        let src = "a".repeat(MAX_BYTES + 1);
        let (_, diags) = parse(&src);
        assert_eq!(diags[0].code, Code::InputTooLarge);
    }

    #[test]
    fn reports_syntax_errors_at_their_place() {
        let src = "a: [1, 2\nb: c\n";
        let (ast, diags) = parse(src);
        assert!(ast.root.is_none());
        assert_eq!(diags[0].code, Code::YamlSyntax);
    }

    #[test]
    fn rejects_second_document() {
        let (_, diags) = parse("a: 1\n---\nb: 2\n");
        assert_eq!(diags[0].code, Code::MultipleDocuments);
    }

    #[test]
    fn empty_input_has_no_root_and_no_error() {
        let (ast, diags) = parse("# only a comment\n");
        assert!(ast.root.is_none());
        assert!(diags.is_empty());
    }
}
