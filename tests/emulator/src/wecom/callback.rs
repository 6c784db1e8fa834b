//! The decrypted XML of WeCom callbacks (`change_external_contact`, `change_external_chat`).

use wecom_crypto::cdata;

fn head(corp: &str, create_s: u64, event: &str, change: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_s}</CreateTime>\
         <MsgType>{}</MsgType><Event>{}</Event><ChangeType>{}</ChangeType>",
        cdata(corp),
        cdata("sys"),
        cdata("event"),
        cdata(event),
        cdata(change),
    )
}

/// A customer added a staff member (through channel `state`), with the welcome code.
pub fn add_external_contact(
    corp: &str,
    create_s: u64,
    userid: &str,
    external_userid: &str,
    state: &str,
    welcome_code: &str,
) -> String {
    let mut x = head(
        corp,
        create_s,
        "change_external_contact",
        "add_external_contact",
    );
    x.push_str(&format!(
        "<UserID>{}</UserID><ExternalUserID>{}</ExternalUserID>",
        cdata(userid),
        cdata(external_userid)
    ));
    if !state.is_empty() {
        x.push_str(&format!("<State>{}</State>", cdata(state)));
    }
    x.push_str(&format!(
        "<WelcomeCode>{}</WelcomeCode></xml>",
        cdata(welcome_code)
    ));
    x
}

/// The customer deleted the staff member (`del_follow_user`), or the staff member deleted the
/// customer (`del_external_contact`).
pub fn deleted(
    corp: &str,
    create_s: u64,
    change: &str,
    userid: &str,
    external_userid: &str,
) -> String {
    let mut x = head(corp, create_s, "change_external_contact", change);
    x.push_str(&format!(
        "<UserID>{}</UserID><ExternalUserID>{}</ExternalUserID>",
        cdata(userid),
        cdata(external_userid)
    ));
    if change == "del_external_contact" {
        x.push_str(&format!("<Source>{}</Source>", cdata("DELETE_BY_STAFF")));
    }
    x.push_str("</xml>");
    x
}

/// The member edited the customer (remark, tags, ...): `edit_external_contact`.
pub fn edited(corp: &str, create_s: u64, userid: &str, external_userid: &str) -> String {
    let mut x = head(
        corp,
        create_s,
        "change_external_contact",
        "edit_external_contact",
    );
    x.push_str(&format!(
        "<UserID>{}</UserID><ExternalUserID>{}</ExternalUserID></xml>",
        cdata(userid),
        cdata(external_userid)
    ));
    x
}

/// A group was created or dismissed (`create` / `dismiss`).
pub fn chat_lifecycle(corp: &str, create_s: u64, chat_id: &str, change: &str) -> String {
    let mut x = head(corp, create_s, "change_external_chat", change);
    x.push_str(&format!("<ChatId>{}</ChatId></xml>", cdata(chat_id)));
    x
}

/// Members joined (`add_member`, with `JoinScene`) or left (`del_member`, with `QuitScene`).
pub fn chat_members(
    corp: &str,
    create_s: u64,
    chat_id: &str,
    detail: &str,
    scene: u8,
    members: &[String],
) -> String {
    let mut x = head(corp, create_s, "change_external_chat", "update");
    let scene_tag = if detail == "add_member" {
        "JoinScene"
    } else {
        "QuitScene"
    };
    x.push_str(&format!(
        "<ChatId>{}</ChatId><UpdateDetail>{}</UpdateDetail><{scene_tag}>{scene}</{scene_tag}>\
         <MemChangeCnt>{}</MemChangeCnt><MemChangeList>",
        cdata(chat_id),
        cdata(detail),
        members.len()
    ));
    for m in members {
        x.push_str(&format!("<Item>{}</Item>", cdata(m)));
    }
    x.push_str("</MemChangeList></xml>");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use wecom_crypto::xml_field;

    #[test]
    fn add_contact_fields() {
        let x = add_external_contact(
            "ww1",
            9,
            "emu_staff_1",
            "wmEmu0000000001",
            "channel_2",
            "wc1",
        );
        assert_eq!(
            xml_field(&x, "ChangeType").as_deref(),
            Some("add_external_contact")
        );
        assert_eq!(xml_field(&x, "State").as_deref(), Some("channel_2"));
        assert_eq!(xml_field(&x, "WelcomeCode").as_deref(), Some("wc1"));
        assert_eq!(xml_field(&x, "CreateTime").as_deref(), Some("9"));
    }

    #[test]
    fn edit_and_lifecycle_fields() {
        let x = edited("ww1", 9, "emu_staff_1", "wmEmu0000000001");
        assert_eq!(
            xml_field(&x, "ChangeType").as_deref(),
            Some("edit_external_contact")
        );
        assert_eq!(
            xml_field(&x, "ExternalUserID").as_deref(),
            Some("wmEmu0000000001")
        );
        let x = chat_lifecycle("ww1", 9, "wrEmu00000003", "dismiss");
        assert_eq!(
            xml_field(&x, "Event").as_deref(),
            Some("change_external_chat")
        );
        assert_eq!(xml_field(&x, "ChangeType").as_deref(), Some("dismiss"));
        assert_eq!(xml_field(&x, "ChatId").as_deref(), Some("wrEmu00000003"));
    }

    #[test]
    fn chat_update_fields() {
        let x = chat_members(
            "ww1",
            9,
            "wrEmu00000001",
            "del_member",
            1,
            &["a".into(), "b".into()],
        );
        assert_eq!(
            xml_field(&x, "Event").as_deref(),
            Some("change_external_chat")
        );
        assert_eq!(xml_field(&x, "QuitScene").as_deref(), Some("1"));
        assert_eq!(xml_field(&x, "MemChangeCnt").as_deref(), Some("2"));
    }
}
