//! Rendering diagnostics for people (rustc style, with the source line and a caret) and for
//! machines (JSON).

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

use crate::diagnostic::{Diagnostic, Label};

/// Line starts of a source text, to turn byte offsets into 1-based line and column.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(src: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            len: src.len(),
        }
    }

    /// 0-based line number containing `offset`.
    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.len);
        match self.starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next - 1,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, src: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(src, offset.min(self.len));
        let line = self.line_of(offset);
        let col = src[self.starts[line]..offset].chars().count();
        (line + 1, col + 1)
    }

    /// The text of the 0-based line, without its line ending.
    fn line_text<'a>(&self, src: &'a str, line: usize) -> &'a str {
        let start = self.starts[line];
        let end = self.starts.get(line + 1).copied().unwrap_or(self.len);
        src[start..end].trim_end_matches(['\n', '\r'])
    }
}

fn floor_char_boundary(src: &str, mut offset: usize) -> usize {
    while offset > 0 && !src.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Renders one diagnostic like rustc:
///
/// ```text
/// welcome.yaml:3:5: error[SOP0010]: unknown key `wiat`
///   |
/// 3 |   - wiat: 5m
///   |     ^^^^ did you mean `wait`?
/// ```
pub fn render_human(diag: &Diagnostic, file: &str, src: &str) -> String {
    let index = LineIndex::new(src);
    let (line, col) = index.position(src, diag.primary.span.start);
    let mut out = format!(
        "{file}:{line}:{col}: {}[{}]: {}\n",
        diag.severity.as_str(),
        diag.code,
        diag.message
    );
    let mut labels: Vec<(&Label, char)> = vec![(&diag.primary, '^')];
    labels.extend(diag.secondary.iter().map(|l| (l, '-')));
    let width = labels
        .iter()
        .map(|(l, _)| index.position(src, l.span.start).0)
        .max()
        .unwrap_or(1)
        .to_string()
        .len();
    let pad = " ".repeat(width);
    let _ = writeln!(out, "{pad} |");
    for (label, mark) in labels {
        snippet(&mut out, &index, src, label, mark, width);
    }
    if let Some(help) = &diag.help {
        let _ = writeln!(out, "{pad} = help: {help}");
    }
    let _ = writeln!(out, "{pad} = see: {}", diag.code.doc_path());
    out
}

fn snippet(
    out: &mut String,
    index: &LineIndex,
    src: &str,
    label: &Label,
    mark: char,
    width: usize,
) {
    let span = clamp(src, &label.span);
    let line = index.line_of(span.start);
    let text = index.line_text(src, line);
    let (_, col) = index.position(src, span.start);
    // Underline to the end of the span or of its first line, at least one character.
    let line_end = index.starts[line] + text.len();
    let end = span.end.min(line_end).max(span.start);
    let carets = src[span.start..end].chars().count().max(1);
    let (shown, col, carets) = window(text, col - 1, carets);
    let _ = writeln!(out, "{:>width$} | {shown}", line + 1);
    let mut under = format!(
        "{} | {}{}",
        " ".repeat(width),
        " ".repeat(col),
        mark.to_string().repeat(carets)
    );
    if let Some(message) = &label.message {
        under.push(' ');
        under.push_str(message);
    }
    let _ = writeln!(out, "{}", under.trim_end());
}

/// Longest source line shown whole; longer lines are cut around the caret.
const MAX_LINE: usize = 120;

/// The part of a long line around the caret, with the caret column and width adjusted.
fn window(text: &str, col: usize, carets: usize) -> (String, usize, usize) {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= MAX_LINE {
        return (text.to_string(), col, carets);
    }
    let start = col.saturating_sub(MAX_LINE / 3);
    let end = (start + MAX_LINE).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    let mut col = col - start;
    if start > 0 {
        shown.insert(0, '…');
        col += 1;
    }
    if end < chars.len() {
        shown.push('…');
    }
    let carets = carets
        .min(end.saturating_sub(start + (col - usize::from(start > 0))))
        .max(1);
    (shown, col, carets)
}

fn clamp(src: &str, span: &Range<usize>) -> Range<usize> {
    let start = floor_char_boundary(src, span.start.min(src.len()));
    let end = floor_char_boundary(src, span.end.min(src.len())).max(start);
    start..end
}

/// A diagnostic with its file and computed positions, the shape of `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    #[serde(flatten)]
    pub diagnostic: &'a Diagnostic,
    pub doc: String,
}

impl<'a> JsonDiagnostic<'a> {
    pub fn new(diagnostic: &'a Diagnostic, file: &'a str, src: &str) -> Self {
        let index = LineIndex::new(src);
        let (line, column) = index.position(src, diagnostic.primary.span.start);
        let (end_line, end_column) = index.position(src, diagnostic.primary.span.end);
        JsonDiagnostic {
            file,
            line,
            column,
            end_line,
            end_column,
            diagnostic,
            doc: diagnostic.code.doc_path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::Code;

    #[test]
    fn positions_count_characters() {
        let src = "a: 1\n名字: x\n";
        let index = LineIndex::new(src);
        assert_eq!(index.position(src, 0), (1, 1));
        assert_eq!(index.position(src, 5), (2, 1));
        let x = src.find('x').unwrap();
        assert_eq!(index.position(src, x), (2, 5));
        assert_eq!(index.position(src, src.len()), (3, 1));
    }

    #[test]
    fn renders_caret_under_span() {
        let src = "steps:\n  - wiat: 5m\n";
        let start = src.find("wiat").unwrap();
        let d = Diagnostic::new(Code::UnknownKey, start..start + 4, "unknown key `wiat`")
            .with_label("did you mean `wait`?");
        let out = render_human(&d, "f.yaml", src);
        assert_eq!(
            out,
            "f.yaml:2:5: error[SOP0010]: unknown key `wiat`\n  |\n2 |   - wiat: 5m\n  |     ^^^^ did you mean `wait`?\n  = see: docs/errors/SOP0010.md\n"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let src = format!("a: {}X{}\n", "y".repeat(500), "z".repeat(500));
        let at = src.find('X').unwrap();
        let d = Diagnostic::new(Code::TemplateSyntax, at..at + 1, "x");
        let out = render_human(&d, "f", &src);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[2].chars().count() < 140, "{}", lines[2]);
        let caret = lines[3].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[2].chars().nth(caret), Some('X'));
    }

    #[test]
    fn spans_past_the_end_do_not_panic() {
        let src = "名";
        let d = Diagnostic::new(Code::YamlSyntax, 1..99, "x");
        let out = render_human(&d, "f", src);
        assert!(out.contains("f:1:1"));
    }
}
