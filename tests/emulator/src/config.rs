//! Everything the emulator can be told at start. Serializable so `/_emulator/config` can show
//! it and a JSON file can hold it.

use serde::{Deserialize, Serialize};

use crate::faults::FaultConfig;

/// Emulator configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seed for the world and the traffic.
    pub seed: u64,
    /// Population size.
    pub world: WorldConfig,
    /// WeCom settings.
    pub wecom: WecomConfig,
    /// Douyin settings.
    pub douyin: DouyinConfig,
    /// The demo shop's account.
    pub shop: crate::shop::ShopConfig,
    /// Where events are delivered.
    pub delivery: DeliveryConfig,
    /// Synthetic traffic.
    pub traffic: TrafficConfig,
    /// Faults active from the start.
    pub faults: FaultConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            world: WorldConfig::default(),
            wecom: WecomConfig::default(),
            douyin: DouyinConfig::default(),
            shop: crate::shop::ShopConfig::default(),
            delivery: DeliveryConfig::default(),
            traffic: TrafficConfig::default(),
            faults: FaultConfig::default(),
        }
    }
}

/// Size of the generated population.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// Staff members (WeCom users who own customers).
    pub staff: u32,
    /// External contacts that already exist at start (each a friend of one staff member).
    pub contacts: u32,
    /// Customer groups.
    pub groups: u32,
    /// Members per group at start (contacts drawn from the population).
    pub group_size: u32,
    /// Channel codes (`State` values) new contacts arrive through.
    pub channels: u32,
    /// Corp tags available to `mark_tag`.
    pub tags: u32,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            staff: 20,
            contacts: 2_000,
            groups: 20,
            group_size: 50,
            channels: 5,
            tags: 12,
        }
    }
}

/// How often a customer (or group) may receive mass messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "n")]
pub enum ReceiveLimit {
    /// Current docs: as many per calendar month as the month has days.
    DaysInMonth,
    /// Older docs: `n` per calendar month.
    PerMonth(u16),
    /// Admin help: `n` per day.
    PerDay(u16),
    /// No limit.
    Unlimited,
}

/// WeCom app, limits and callback crypto.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WecomConfig {
    /// The corp id (also the receive id of callbacks).
    pub corp_id: String,
    /// How many corps the emulator serves (default 1). Corp 1 is `corp_id`, corp n ≥ 2 is
    /// `{corp_id}_{n}` ([`WecomConfig::corp_ids`]); all share the secrets, the people and the
    /// callbacks, each has its own tokens and its own per-API limits, so benchmarks can run
    /// many platform accounts against one emulator.
    pub corps: u32,
    /// Secrets accepted by `gettoken`; each is one app with its own token.
    pub secrets: Vec<String>,
    /// Agent id of the self-built app (for `message/send` and callbacks).
    pub agent_id: u32,
    /// Token lifetime in seconds (7200 on the platform).
    pub token_ttl_s: u64,
    /// Calls per API per minute for the corp (10,000 on the platform).
    pub api_limit_per_min: u32,
    /// Calls per API per hour for the corp (150,000 on the platform).
    pub api_limit_per_hour: u32,
    /// Welcome code lifetime in milliseconds (20 s on the platform).
    pub welcome_code_ttl_ms: u64,
    /// Staff confirm mass-send tasks this long after creation; `None` means never.
    pub confirm_after_ms: Option<u64>,
    /// Mass-send receive limit per customer.
    pub customer_receive_limit: ReceiveLimit,
    /// Mass-send receive limit per customer group.
    pub group_receive_limit: ReceiveLimit,
    /// App messages to one staff member per minute before the excess is dropped.
    pub app_msg_per_member_per_min: u32,
    /// Licensed seats; the daily app-message quota is seats x 200 recipient-sends.
    pub licensed_seats: u32,
    /// Callback token (the `Token` of the callback configuration).
    pub callback_token: String,
    /// Callback EncodingAESKey (43 characters).
    pub encoding_aes_key: String,
    /// The corp's 微信客服 account customers write to (`open_kfid`).
    pub open_kfid: String,
    /// Life of the `Token` of a `kf_msg_or_event` callback, in ms (10 min on the platform).
    pub kf_token_ttl_ms: u64,
    /// How long `kf/sync_msg` can still read a message, in ms (3 days on the platform).
    pub kf_retention_ms: u64,
    /// At most this many customer messages are kept (oldest forgotten first), so long
    /// traffic runs stay bounded in memory.
    pub kf_keep_messages: usize,
    /// `kf/sync_msg` calls per minute without a callback `Token` ("strict" on the platform,
    /// number not published).
    pub kf_sync_without_token_per_min: u32,
}

impl Default for WecomConfig {
    fn default() -> Self {
        Self {
            corp_id: "ww0emulator000001".into(),
            corps: 1,
            secrets: vec!["emu-secret".into()],
            agent_id: 1_000_002,
            token_ttl_s: 7_200,
            api_limit_per_min: 10_000,
            api_limit_per_hour: 150_000,
            welcome_code_ttl_ms: 20_000,
            confirm_after_ms: Some(60_000),
            customer_receive_limit: ReceiveLimit::DaysInMonth,
            group_receive_limit: ReceiveLimit::DaysInMonth,
            app_msg_per_member_per_min: 30,
            licensed_seats: 100,
            callback_token: "emuToken".into(),
            encoding_aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into(),
            open_kfid: "wkEmu00000000001".into(),
            kf_token_ttl_ms: 600_000,
            kf_retention_ms: 3 * 86_400_000,
            kf_keep_messages: 100_000,
            kf_sync_without_token_per_min: 10,
        }
    }
}

impl WecomConfig {
    /// The id of corp `index` (0-based): `corp_id`, then `{corp_id}_2`, `{corp_id}_3`, …
    pub fn corp_id_at(&self, index: usize) -> String {
        if index == 0 {
            self.corp_id.clone()
        } else {
            format!("{}_{}", self.corp_id, index + 1)
        }
    }

    /// Every corp id served, in order.
    pub fn corp_ids(&self) -> Vec<String> {
        (0..self.corps.max(1) as usize)
            .map(|i| self.corp_id_at(i))
            .collect()
    }

    /// The index of corp `id`, if served.
    pub fn corp_index(&self, id: &str) -> Option<usize> {
        if id == self.corp_id {
            return Some(0);
        }
        let n: usize = id
            .strip_prefix(&self.corp_id)?
            .strip_prefix('_')?
            .parse()
            .ok()?;
        // Only the canonical spelling: `_02` or `_1` are not corps.
        (n >= 2 && n <= self.corps as usize && self.corp_id_at(n - 1) == id).then_some(n - 1)
    }
}

/// Douyin app and enterprise account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DouyinConfig {
    /// The app's client key.
    pub client_key: String,
    /// The app's client secret (also signs webhooks).
    pub client_secret: String,
    /// open_id of the enterprise account the app acts for.
    pub enterprise_open_id: String,
    /// Token lifetime in seconds.
    pub token_ttl_s: u64,
    /// Reply window after a user's message, in milliseconds.
    pub reply_window_ms: u64,
    /// Replies allowed inside one window.
    pub replies_per_window: u32,
    /// Proactive messages per authorised user per day.
    pub proactive_per_day: u32,
    /// Calls to the send API per minute before 28003018.
    pub send_limit_per_min: u32,
}

impl Default for DouyinConfig {
    fn default() -> Self {
        Self {
            client_key: "awemuclientkey01".into(),
            client_secret: "emu-douyin-secret".into(),
            enterprise_open_id: "dy-enterprise-0001".into(),
            token_ttl_s: 7_200,
            reply_window_ms: 24 * 3_600_000,
            replies_per_window: 5,
            proactive_per_day: 3,
            send_limit_per_min: 6_000,
        }
    }
}

/// Where and how events reach the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// WeCom callback URL (`None`: WeCom events are only recorded).
    pub wecom_url: Option<String>,
    /// Douyin webhook URL (`None`: Douyin events are only recorded).
    pub douyin_url: Option<String>,
    /// Shop webhook URL (`None`: order events are only recorded).
    pub shop_url: Option<String>,
    /// How long the receiver has to answer, in milliseconds.
    pub timeout_ms: u64,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Pause before each retry, in milliseconds.
    pub retry_backoff_ms: u64,
    /// Callback records kept for `/_emulator/callbacks` (older ones are forgotten).
    pub keep_records: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            wecom_url: None,
            douyin_url: None,
            shop_url: None,
            timeout_ms: 5_000,
            retries: 3,
            retry_backoff_ms: 1_000,
            keep_records: 100_000,
        }
    }
}

/// Synthetic traffic.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficConfig {
    /// Events per second (0 = no generator).
    pub rate_per_s: f64,
    /// Stop after this many events (0 = unbounded).
    pub max_events: u64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        Self {
            rate_per_s: 0.0,
            max_events: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corp_ids_are_numbered_from_the_second() {
        let w = WecomConfig {
            corps: 3,
            ..WecomConfig::default()
        };
        assert_eq!(
            w.corp_ids(),
            [
                "ww0emulator000001",
                "ww0emulator000001_2",
                "ww0emulator000001_3"
            ]
        );
        assert_eq!(w.corp_index("ww0emulator000001"), Some(0));
        assert_eq!(w.corp_index("ww0emulator000001_3"), Some(2));
        for bad in [
            "ww0emulator000001_4",
            "ww0emulator000001_1",
            "ww0emulator000001_02",
            "x",
        ] {
            assert_eq!(w.corp_index(bad), None, "{bad}");
        }
        assert_eq!(WecomConfig::default().corp_ids(), ["ww0emulator000001"]);
    }

    #[test]
    fn partial_json_keeps_defaults() {
        let c: Config = serde_json::from_str(
            r#"{"world": {"contacts": 5},
                "wecom": {"customer_receive_limit": {"rule": "per_month", "n": 4},
                          "confirm_after_ms": null},
                "faults": {"default": {"error_rate": 0.5}}}"#,
        )
        .unwrap();
        assert_eq!(c.world.contacts, 5);
        assert_eq!(c.world.staff, 20);
        assert_eq!(c.wecom.customer_receive_limit, ReceiveLimit::PerMonth(4));
        assert_eq!(c.wecom.group_receive_limit, ReceiveLimit::DaysInMonth);
        assert_eq!(c.wecom.confirm_after_ms, None);
        assert_eq!(c.faults.default.error_rate, 0.5);
    }

    #[test]
    fn default_config_round_trips() {
        let text = serde_json::to_string(&Config::default()).unwrap();
        let back: Config = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert!(serde_json::from_str::<Config>(r#"{"seed": "x"}"#).is_err());
    }
}
