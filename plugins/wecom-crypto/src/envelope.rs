//! The callback envelope `<xml><ToUserName/><Encrypt/><AgentID/></xml>` and a tiny reader
//! for the flat XML WeCom uses (one level of elements, text or CDATA values).

use crate::CryptoError;

/// The outer, unencrypted callback body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The corpid the callback is for.
    pub to_user_name: String,
    /// Base64 ciphertext of the inner XML.
    pub encrypt: String,
    /// The app's agent id (may be empty for some callbacks).
    pub agent_id: String,
}

/// Render an envelope as WeCom sends it.
pub fn build_envelope(envelope: &Envelope) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt><AgentID>{}</AgentID></xml>",
        cdata(&envelope.to_user_name),
        cdata(&envelope.encrypt),
        cdata(&envelope.agent_id),
    )
}

/// Parse a callback body; `Encrypt` is required, the other fields default to empty.
pub fn parse_envelope(xml: &str) -> Result<Envelope, CryptoError> {
    let encrypt = xml_field(xml, "Encrypt").ok_or(CryptoError::MissingEncrypt)?;
    Ok(Envelope {
        to_user_name: xml_field(xml, "ToUserName").unwrap_or_default(),
        encrypt,
        agent_id: xml_field(xml, "AgentID").unwrap_or_default(),
    })
}

/// Wrap a value in CDATA, splitting any `]]>` so the section cannot be closed early.
pub fn cdata(value: &str) -> String {
    format!("<![CDATA[{}]]>", value.replace("]]>", "]]]]><![CDATA[>"))
}

/// The text of the first `<name>…</name>` element, with CDATA sections joined and entities
/// decoded. Good enough for WeCom's flat callback XML; not a general XML parser.
pub fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(text_value(&xml[start..end]))
}

fn text_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find("<![CDATA[") {
        out.push_str(&unescape(&rest[..pos]));
        let after = &rest[pos + 9..];
        match after.find("]]>") {
            Some(end) => {
                out.push_str(&after[..end]);
                rest = &after[end + 3..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(&unescape(rest));
    out
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.trim().to_owned();
    }
    s.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_an_envelope() {
        let env = Envelope {
            to_user_name: "ww1".into(),
            encrypt: "abc+/==".into(),
            agent_id: "1000002".into(),
        };
        assert_eq!(parse_envelope(&build_envelope(&env)), Ok(env));
    }

    #[test]
    fn reads_plain_and_cdata_values() {
        let xml = "<xml><A>1&amp;2</A><B><![CDATA[x<y]]></B><C> 7 </C></xml>";
        assert_eq!(xml_field(xml, "A").as_deref(), Some("1&2"));
        assert_eq!(xml_field(xml, "B").as_deref(), Some("x<y"));
        assert_eq!(xml_field(xml, "C").as_deref(), Some("7"));
        assert_eq!(xml_field(xml, "D"), None);
    }

    #[test]
    fn cdata_cannot_be_closed_early() {
        let xml = format!("<xml><A>{}</A></xml>", cdata("a]]>b"));
        assert_eq!(xml_field(&xml, "A").as_deref(), Some("a]]>b"));
    }

    #[test]
    fn missing_encrypt_is_an_error() {
        assert_eq!(
            parse_envelope("<xml><ToUserName>x</ToUserName></xml>"),
            Err(CryptoError::MissingEncrypt)
        );
    }
}
