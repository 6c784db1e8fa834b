//! Plain-scalar typing and scalar extents.

use super::node::{ScalarStyle, Value};

/// Resolves a plain scalar with the YAML 1.2 core schema (what serde_yaml 0.9 does), so that
/// `yes` stays a string and `010` is the integer 10.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = parse_int(text) {
        return Value::Int(int);
    }
    let looks_numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if looks_numeric && let Ok(f) = text.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(text.to_string(), ScalarStyle::Plain)
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        (2, bin)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// The end of a scalar that starts at byte `start`, and where its text appears verbatim, if
/// it does. The event parser only marks starts.
pub fn extent(src: &str, start: usize, style: ScalarStyle, value: &str) -> (usize, Option<usize>) {
    let rest = &src[start..];
    let line_end = start + rest.find(['\n', '\r']).unwrap_or(rest.len());
    match style {
        ScalarStyle::Plain if rest.starts_with(value) => (start + value.len(), Some(start)),
        ScalarStyle::Plain => (line_end, None),
        ScalarStyle::Quoted => {
            let quote = rest.chars().next().unwrap_or('"');
            let end = closing_quote(rest, quote).map_or(line_end, |e| start + e);
            let verbatim = rest
                .get(quote.len_utf8()..)
                .filter(|inner| inner.starts_with(value))
                .map(|_| start + quote.len_utf8());
            (end, verbatim)
        }
        ScalarStyle::Block => (line_end, None),
    }
}

/// Byte offset just past the closing quote of a quoted scalar at the start of `text`.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
                continue;
            }
            return Some(i + c.len_utf8());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_core_schema() {
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("true"), Value::Bool(true));
        assert_eq!(
            resolve_plain("yes"),
            Value::Str("yes".into(), ScalarStyle::Plain)
        );
        assert_eq!(resolve_plain("-12"), Value::Int(-12));
        assert_eq!(resolve_plain("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain("1e3"), Value::Float(1000.0));
        assert_eq!(
            resolve_plain("inf"),
            Value::Str("inf".into(), ScalarStyle::Plain)
        );
        assert_eq!(
            resolve_plain("30s"),
            Value::Str("30s".into(), ScalarStyle::Plain)
        );
        assert_eq!(
            resolve_plain("10:00"),
            Value::Str("10:00".into(), ScalarStyle::Plain)
        );
    }

    #[test]
    fn finds_quoted_extent() {
        let src = r#"a: "x\"y" # c"#;
        let (end, verbatim) = extent(src, 3, ScalarStyle::Quoted, "x\"y");
        assert_eq!(&src[3..end], r#""x\"y""#);
        assert_eq!(verbatim, None);
        let src = "a: 'it''s'";
        let (end, _) = extent(src, 3, ScalarStyle::Quoted, "it's");
        assert_eq!(end, src.len());
    }
}
