//! 微信客服 (WeChat customer service): what customers write to the corp's kf account.
//!
//! The platform does not push message content. It sends a `kf_msg_or_event` callback with a
//! short-lived `Token` and the `OpenKfId`; the receiver then reads the messages with
//! `POST kf/sync_msg` from its own cursor. Modelled here: one kf account, text messages from
//! customers (`origin` 3) served by the customer's owner, a retention of three days, the
//! callback token's ten-minute life, `limit` ≤ 1,000 with `has_more`, and a stricter frequency
//! limit for reads without a token.

use std::collections::{HashMap, VecDeque};

use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use wecom_crypto::cdata;

use super::{Query, WxError, call, parse_body};
use crate::app::App;
use crate::config::WecomConfig;
use crate::rate_limit::RateLimiter;

/// 95004: the `open_kfid` names no kf account of the corp.
pub const UNKNOWN_OPEN_KFID: WxError = WxError::new(95004, "open_kfid not exist");
/// 95007: the callback `Token` is unknown or older than its ten minutes.
pub const INVALID_MSG_TOKEN: WxError = WxError::new(95007, "invalid msg token");

/// Most messages one `sync_msg` answer carries (also the default).
pub const MAX_LIMIT: usize = 1_000;
/// Longest `cursor` the platform accepts, in bytes.
const MAX_CURSOR_BYTES: usize = 64;
/// Longest `token` the platform accepts, in bytes.
const MAX_TOKEN_BYTES: usize = 128;
/// Prefix of our opaque cursors; the rest is the hex sequence number of the next message.
const CURSOR_PREFIX: &str = "emuCursor";

/// One message in the kf account's log, as `sync_msg` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct KfMessage {
    /// Position in the log; cursors point between positions.
    #[serde(skip)]
    pub seq: u64,
    /// The platform's message id, unique per message.
    pub msgid: String,
    /// The kf account written to.
    pub open_kfid: String,
    /// The customer.
    pub external_userid: String,
    /// Unix seconds.
    pub send_time: u64,
    /// 3: sent by the customer.
    pub origin: u8,
    /// The member serving the conversation (the customer's owner).
    pub servicer_userid: String,
    /// Always `text` here.
    pub msgtype: &'static str,
    /// `{content}`.
    pub text: Text,
}

/// A text message's content.
#[derive(Debug, Clone, Serialize)]
pub struct Text {
    /// What the customer wrote.
    pub content: String,
}

/// The kf account's message log and the callback tokens still valid.
#[derive(Debug)]
pub struct KfState {
    messages: VecDeque<KfMessage>,
    next_seq: u64,
    /// Callback token → expiry (Unix ms), plus issue order for pruning.
    tokens: HashMap<String, u64>,
    token_order: VecDeque<String>,
    /// Reads without a token.
    untokened: RateLimiter,
}

/// The outcome of a customer's message: what the callback must carry.
#[derive(Debug, Clone)]
pub struct Written {
    /// The new message's id.
    pub msgid: String,
    /// The token the callback carries.
    pub token: String,
}

impl KfState {
    /// An empty log for `cfg`.
    pub fn new(cfg: &WecomConfig) -> Self {
        Self {
            messages: VecDeque::new(),
            next_seq: 0,
            tokens: HashMap::new(),
            token_order: VecDeque::new(),
            untokened: RateLimiter::new(cfg.kf_sync_without_token_per_min, 0),
        }
    }

    /// Messages still readable.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether nothing is readable.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Record a customer's text and issue the callback token announcing it.
    pub fn write(
        &mut self,
        cfg: &WecomConfig,
        now_ms: u64,
        external_userid: &str,
        servicer_userid: &str,
        text: &str,
        token_salt: [u8; 16],
    ) -> Written {
        self.forget_old(cfg, now_ms);
        let seq = self.next_seq;
        self.next_seq += 1;
        let msgid = format!("from_msgid_{seq:019}");
        self.messages.push_back(KfMessage {
            seq,
            msgid: msgid.clone(),
            open_kfid: cfg.open_kfid.clone(),
            external_userid: external_userid.to_owned(),
            send_time: now_ms / 1_000,
            origin: 3,
            servicer_userid: servicer_userid.to_owned(),
            msgtype: "text",
            text: Text {
                content: text.to_owned(),
            },
        });
        while self.messages.len() > cfg.kf_keep_messages.max(1) {
            self.messages.pop_front();
        }
        let token = format!(
            "ENC{}",
            token_salt
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        self.tokens
            .insert(token.clone(), now_ms.saturating_add(cfg.kf_token_ttl_ms));
        self.token_order.push_back(token.clone());
        Written { msgid, token }
    }

    /// Drop messages past retention and tokens past their life.
    fn forget_old(&mut self, cfg: &WecomConfig, now_ms: u64) {
        let oldest_s = now_ms.saturating_sub(cfg.kf_retention_ms) / 1_000;
        while self
            .messages
            .front()
            .is_some_and(|m| m.send_time < oldest_s)
        {
            self.messages.pop_front();
        }
        while let Some(t) = self.token_order.front() {
            match self.tokens.get(t) {
                Some(&expiry) if expiry > now_ms => break,
                _ => {
                    self.tokens.remove(t);
                    self.token_order.pop_front();
                }
            }
        }
    }

    /// One page of `sync_msg`.
    fn sync(&mut self, cfg: &WecomConfig, now_ms: u64, req: &SyncReq) -> Result<Page, WxError> {
        self.forget_old(cfg, now_ms);
        match req.token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) if t.len() > MAX_TOKEN_BYTES => return Err(WxError::INVALID_PARAMETER),
            Some(t) => {
                if self.tokens.get(t).is_none_or(|&expiry| expiry <= now_ms) {
                    return Err(INVALID_MSG_TOKEN);
                }
            }
            None => {
                if !self.untokened.allow("kf/sync_msg", now_ms) {
                    return Err(WxError::FREQUENCY_LIMIT);
                }
            }
        }
        if let Some(kf) = req.open_kfid.as_deref().filter(|k| !k.is_empty())
            && kf != cfg.open_kfid
        {
            return Err(UNKNOWN_OPEN_KFID);
        }
        let from = match req.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => parse_cursor(c).ok_or(WxError::INVALID_PARAMETER)?,
            // No cursor: from the earliest message still kept.
            None => 0,
        };
        let limit = match req.limit {
            None | Some(0) => MAX_LIMIT,
            Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        };
        let start = self.messages.partition_point(|m| m.seq < from);
        let msg_list: Vec<KfMessage> = self
            .messages
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect();
        let next = msg_list
            .last()
            .map_or(from.max(self.first_seq()), |m| m.seq + 1);
        let has_more = self.messages.back().is_some_and(|m| m.seq >= next);
        Ok(Page {
            next_cursor: cursor(next),
            has_more: u8::from(has_more),
            msg_list,
        })
    }

    /// Sequence number of the oldest message kept (or of the next one when empty).
    fn first_seq(&self) -> u64 {
        self.messages.front().map_or(self.next_seq, |m| m.seq)
    }
}

/// The opaque cursor pointing before message `seq`.
fn cursor(seq: u64) -> String {
    format!("{CURSOR_PREFIX}{seq:x}")
}

fn parse_cursor(c: &str) -> Option<u64> {
    if c.len() > MAX_CURSOR_BYTES {
        return None;
    }
    u64::from_str_radix(c.strip_prefix(CURSOR_PREFIX)?, 16).ok()
}

/// The body of `kf/sync_msg`.
#[derive(Debug, Deserialize)]
struct SyncReq {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    open_kfid: Option<String>,
    // `voice_format` is accepted and ignored (unknown fields are): no voice messages here.
}

/// One answer of `kf/sync_msg`.
#[derive(Debug, Serialize)]
struct Page {
    next_cursor: String,
    has_more: u8,
    msg_list: Vec<KfMessage>,
}

/// `POST kf/sync_msg`.
pub(super) async fn sync_msg(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "kf/sync_msg", &q, |st, cfg, now| {
        let req: SyncReq = parse_body(&body)?;
        st.wecom.kf.sync(&cfg.wecom, now, &req)
    })
}

/// The decrypted XML of the `kf_msg_or_event` callback.
pub fn callback(corp: &str, create_s: u64, token: &str, open_kfid: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><CreateTime>{create_s}</CreateTime>\
         <MsgType>{}</MsgType><Event>{}</Event><Token>{}</Token><OpenKfId>{}</OpenKfId></xml>",
        cdata(corp),
        cdata("event"),
        cdata("kf_msg_or_event"),
        cdata(token),
        cdata(open_kfid),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wecom_crypto::xml_field;

    const T0: u64 = 1_709_604_000_000;

    fn req(cursor: Option<&str>, token: Option<&str>, limit: Option<u64>) -> SyncReq {
        SyncReq {
            cursor: cursor.map(str::to_owned),
            token: token.map(str::to_owned),
            limit,
            open_kfid: None,
        }
    }

    fn write(kf: &mut KfState, cfg: &WecomConfig, now: u64, text: &str) -> Written {
        kf.write(cfg, now, "wmEmu0000000001", "emu_staff_1", text, [7; 16])
    }

    #[test]
    fn pages_follow_the_cursor_and_say_when_more_remain() {
        let cfg = WecomConfig::default();
        let mut kf = KfState::new(&cfg);
        let token = (0..5)
            .map(|i| write(&mut kf, &cfg, T0 + i, &format!("m{i}")).token)
            .last()
            .unwrap();
        let p = kf
            .sync(&cfg, T0, &req(None, Some(&token), Some(2)))
            .unwrap();
        let texts: Vec<_> = p.msg_list.iter().map(|m| m.text.content.as_str()).collect();
        assert_eq!(texts, ["m0", "m1"]);
        assert_eq!(p.has_more, 1);
        let p = kf
            .sync(&cfg, T0, &req(Some(&p.next_cursor), Some(&token), Some(10)))
            .unwrap();
        assert_eq!(p.msg_list.len(), 3);
        assert_eq!(p.has_more, 0);
        let end = p.next_cursor.clone();
        // Nothing new: the same cursor comes back.
        let p = kf
            .sync(&cfg, T0, &req(Some(&end), Some(&token), None))
            .unwrap();
        assert!(p.msg_list.is_empty());
        assert_eq!(p.next_cursor, end);
        write(&mut kf, &cfg, T0 + 10, "m5");
        let p = kf
            .sync(&cfg, T0, &req(Some(&end), Some(&token), None))
            .unwrap();
        assert_eq!(p.msg_list[0].text.content, "m5");
        assert_eq!(p.msg_list[0].origin, 3);
        assert_eq!(p.msg_list[0].servicer_userid, "emu_staff_1");
    }

    #[test]
    fn limit_is_capped_at_one_thousand() {
        let cfg = WecomConfig::default();
        let mut kf = KfState::new(&cfg);
        let mut token = String::new();
        for i in 0..1_001 {
            token = write(&mut kf, &cfg, T0, &format!("{i}")).token;
        }
        for limit in [None, Some(0), Some(5_000)] {
            let p = kf.sync(&cfg, T0, &req(None, Some(&token), limit)).unwrap();
            assert_eq!(p.msg_list.len(), MAX_LIMIT, "{limit:?}");
            assert_eq!(p.has_more, 1);
        }
    }

    #[test]
    fn tokens_live_ten_minutes_and_reads_without_one_are_limited() {
        let cfg = WecomConfig {
            kf_sync_without_token_per_min: 2,
            ..WecomConfig::default()
        };
        let mut kf = KfState::new(&cfg);
        let w = write(&mut kf, &cfg, T0, "hi");
        let at = |ms| T0 + ms;
        assert!(
            kf.sync(&cfg, at(599_999), &req(None, Some(&w.token), None))
                .is_ok()
        );
        let late = kf.sync(&cfg, at(600_000), &req(None, Some(&w.token), None));
        assert_eq!(late.unwrap_err(), INVALID_MSG_TOKEN);
        let forged = kf.sync(&cfg, T0, &req(None, Some("ENCforged"), None));
        assert_eq!(forged.unwrap_err(), INVALID_MSG_TOKEN);
        assert!(kf.sync(&cfg, T0, &req(None, None, None)).is_ok());
        assert!(kf.sync(&cfg, T0, &req(None, Some(""), None)).is_ok());
        let third = kf.sync(&cfg, T0, &req(None, None, None));
        assert_eq!(third.unwrap_err(), WxError::FREQUENCY_LIMIT);
        assert!(kf.sync(&cfg, T0 + 60_000, &req(None, None, None)).is_ok());
    }

    #[test]
    fn bad_cursors_and_accounts_are_refused() {
        let cfg = WecomConfig::default();
        let mut kf = KfState::new(&cfg);
        let w = write(&mut kf, &cfg, T0, "hi");
        for bad in [
            "nonsense",
            "emuCursorZZ",
            &format!("{CURSOR_PREFIX}{}", "0".repeat(60)),
        ] {
            let e = kf.sync(&cfg, T0, &req(Some(bad), Some(&w.token), None));
            assert_eq!(e.unwrap_err(), WxError::INVALID_PARAMETER, "{bad}");
        }
        let mut other = req(None, Some(&w.token), None);
        other.open_kfid = Some("wkSomeoneElse".into());
        assert_eq!(kf.sync(&cfg, T0, &other).unwrap_err(), UNKNOWN_OPEN_KFID);
        other.open_kfid = Some(cfg.open_kfid.clone());
        assert_eq!(kf.sync(&cfg, T0, &other).unwrap().msg_list.len(), 1);
    }

    #[test]
    fn messages_are_kept_three_days_and_bounded_in_number() {
        let cfg = WecomConfig {
            kf_keep_messages: 3,
            ..WecomConfig::default()
        };
        let mut kf = KfState::new(&cfg);
        write(&mut kf, &cfg, T0, "old");
        let three_days = 3 * 86_400_000;
        let w = write(&mut kf, &cfg, T0 + three_days + 1_000, "new");
        let p = kf
            .sync(
                &cfg,
                T0 + three_days + 1_000,
                &req(None, Some(&w.token), None),
            )
            .unwrap();
        let texts: Vec<_> = p.msg_list.iter().map(|m| m.text.content.as_str()).collect();
        assert_eq!(texts, ["new"], "the old message is past retention");
        // A cursor from before the forgotten messages starts at the oldest kept.
        let p = kf
            .sync(
                &cfg,
                T0 + three_days + 1_000,
                &req(Some(&cursor(0)), Some(&w.token), None),
            )
            .unwrap();
        assert_eq!(p.msg_list[0].text.content, "new");
        for i in 0..5 {
            write(&mut kf, &cfg, T0 + three_days + 2_000, &format!("{i}"));
        }
        assert_eq!(kf.len(), 3);
    }

    #[test]
    fn callback_fields() {
        let x = callback("ww1", 9, "ENCabc", "wkEmu");
        assert_eq!(xml_field(&x, "Event").as_deref(), Some("kf_msg_or_event"));
        assert_eq!(xml_field(&x, "Token").as_deref(), Some("ENCabc"));
        assert_eq!(xml_field(&x, "OpenKfId").as_deref(), Some("wkEmu"));
        assert_eq!(xml_field(&x, "CreateTime").as_deref(), Some("9"));
    }
}
