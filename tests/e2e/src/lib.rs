//! The six stories of DESIGN.md walked end to end: the real `sop` daemon and the platform
//! emulator as processes (started by [`sop_harness`]), both on manual clocks that a [`Story`]
//! moves together, so a story spanning weeks runs in seconds without sleeping.
//!
//! A story injects what people do through the emulator (`POST /_emulator/events`: a contact
//! adds a staff member through a channel QR code, writes "1", joins a group, sends a Douyin
//! DM), moves time, and asserts the emulator's delivery log (who got what, exactly once, what
//! was not sent) and the daemon's admin API (runs, tags, a contact's timeline). Every wait
//! polls a condition against a generous deadline; nothing asserts on elapsed time.

use std::time::Duration;

use serde_json::{Value, json};
use sop_harness::{Error, World, WorldSpec, wait_for};

/// The tenant of the bundled playbooks.
pub const TENANT: &str = "demo-brand";

/// Where both clocks start: Monday 2026-03-02 09:00 Asia/Shanghai (01:00 UTC), after every
/// bundled playbook's quiet hours.
pub const START_MS: i64 = 1_772_413_200_000;

/// The demo WeCom account's corp and secret (`runtime/sop/demo/sop.toml.in`, the harness's
/// environment).
const WECOM_CORP: &str = "ww0emulator000001";
const WECOM_SECRET: &str = "emu-secret";

/// One minute, hour and day in milliseconds.
pub const MINUTE: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR: i64 = 60 * MINUTE;
/// One day in milliseconds.
pub const DAY: i64 = 24 * HOUR;

/// How long any one condition may take to hold; generous for a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// How far both clocks move at each unsuccessful poll while a test waits. The gate paces each
/// account's calls on the daemon's clock (docs/policy.md §4), so a second call in a lane waits
/// a few virtual milliseconds: a manual clock that never moved would hold it forever. 100 ms
/// per poll keeps waits short next to every deadline in the stories (a welcome code's 20 s).
pub const TICK_MS: i64 = 100;

/// A daemon and an emulator on manual clocks standing at [`START_MS`], with the bundled
/// playbooks and plugins (the demo's configuration).
#[derive(Debug)]
pub struct Story {
    /// The processes; `world.admin` is the admin API with the admin token.
    pub world: World,
}

/// What a test does with an [`Error`]: fail, with both processes' logs.
pub trait OrFail<T> {
    /// Unwraps, or panics with the error and the logs of `story`.
    fn or_fail(self, story: &Story) -> T;
}

impl<T> OrFail<T> for Result<T, Error> {
    fn or_fail(self, story: &Story) -> T {
        self.unwrap_or_else(|e| panic!("{e}\n{}", story.world.logs()))
    }
}

impl Story {
    /// Starts both processes on manual clocks at [`START_MS`]. The emulator confirms WeCom
    /// mass sends as soon as they are created (a staff member who always taps "send"), so a
    /// mass send shows in the delivery log without moving time.
    pub async fn start() -> Story {
        let mut spec = WorldSpec::demo();
        let start = START_MS.to_string();
        spec.daemon_args
            .extend(["--manual-clock".to_owned(), start.clone()]);
        spec.emulator_args.extend([
            "--manual-clock".to_owned(),
            start,
            "--confirm-after-ms".to_owned(),
            "0".to_owned(),
        ]);
        let world = World::start(spec)
            .await
            .unwrap_or_else(|e| panic!("starting the daemon and the emulator: {e}"));
        Story { world }
    }

    /// The daemon's time, Unix ms.
    pub async fn now_ms(&self) -> i64 {
        let clock = self.world.admin.get("/api/clock").await.or_fail(self);
        assert_eq!(clock["manual"], true, "the daemon is not on a manual clock");
        clock["now_ms"].as_i64().expect("now_ms")
    }

    /// Moves both clocks forward by `ms`: the platform first, so that when the daemon's timers
    /// fire and it calls the platform, the platform is already at the new time.
    pub async fn advance(&self, ms: i64) {
        let ms = u64::try_from(ms).expect("time only moves forward");
        sop_harness::advance_clocks(self.world.emulator.http(), &self.world.admin, ms)
            .await
            .or_fail(self);
    }

    /// Moves both clocks to `at_ms` (Unix ms; not before now).
    pub async fn advance_to(&self, at_ms: i64) {
        let now = self.now_ms().await;
        self.advance(at_ms - now).await;
    }

    /// Injects what someone does (`POST /_emulator/events`), answering the emulator's summary
    /// (ids of the contact, group, welcome code...).
    pub async fn event(&self, event: Value) -> Value {
        self.world
            .emulator
            .post("/_emulator/events", &event)
            .await
            .or_fail(self)
    }

    /// A new contact adds `staff` through channel QR code `channel`; their `external_userid`.
    pub async fn add_contact(&self, staff: &str, channel: u16) -> String {
        let added = self
            .event(json!({"kind": "add_contact", "staff": staff, "channel": channel}))
            .await;
        added["external_userid"]
            .as_str()
            .unwrap_or_else(|| panic!("add_contact answered {added}"))
            .to_owned()
    }

    /// The contact writes `text` (to the corp's 微信客服 account, which is how WeCom lets a
    /// daemon read what a customer wrote).
    pub async fn contact_writes(&self, external_userid: &str, text: &str) {
        self.event(
            json!({"kind": "customer_message", "external_userid": external_userid, "text": text}),
        )
        .await;
    }

    /// Calls the emulated WeCom API as the demo account would (`POST /cgi-bin/{api}` with the
    /// demo app's token), answering its JSON: how a test reads what WeCom itself holds (a
    /// contact's tags, the tag library).
    pub async fn wecom_post(&self, api: &str, body: &Value) -> Value {
        let token = self.wecom_token().await;
        self.world
            .emulator
            .post(&format!("/cgi-bin/{api}?access_token={token}"), body)
            .await
            .or_fail(self)
    }

    /// `GET /cgi-bin/{api}?{query}` on the emulated WeCom API with the demo app's token.
    pub async fn wecom_get(&self, api: &str, query: &str) -> Value {
        let token = self.wecom_token().await;
        self.world
            .emulator
            .get(&format!("/cgi-bin/{api}?access_token={token}&{query}"))
            .await
            .or_fail(self)
    }

    /// The demo app's current token (WeCom answers the same one while it is valid, so this
    /// never disturbs the daemon's).
    async fn wecom_token(&self) -> String {
        let got = self
            .world
            .emulator
            .get(&format!(
                "/cgi-bin/gettoken?corpid={WECOM_CORP}&corpsecret={WECOM_SECRET}"
            ))
            .await
            .or_fail(self);
        got["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("gettoken answered {got}"))
            .to_owned()
    }

    /// The names of the tags WeCom holds on a contact (`externalcontact/get`).
    pub async fn wecom_tags(&self, external_userid: &str) -> Vec<String> {
        let got = self
            .wecom_get(
                "externalcontact/get",
                &format!("external_userid={external_userid}"),
            )
            .await;
        got["follow_user"][0]["tags"]
            .as_array()
            .unwrap_or_else(|| panic!("externalcontact/get answered {got}"))
            .iter()
            .filter_map(|t| t["tag_name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every delivery to a person so far, in order.
    pub async fn deliveries(&self) -> Vec<Value> {
        self.world.emulator.deliveries().await.or_fail(self)
    }

    /// The deliveries to `to` so far.
    pub async fn deliveries_to(&self, to: &str) -> Vec<Value> {
        let all = self.deliveries().await;
        all.into_iter().filter(|d| d["to"] == to).collect()
    }

    /// Waits until the deliveries to `to` satisfy `done`; returns them.
    pub async fn wait_deliveries_to(
        &self,
        what: &str,
        to: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let list = self.deliveries_to(to).await;
            if done(&list) {
                return list;
            }
            if started.elapsed() > DEADLINE {
                let view = self
                    .world
                    .admin
                    .get_raw(&format!("/api/contacts/{TENANT}/{to}"))
                    .await
                    .map(|r| r.text())
                    .unwrap_or_default();
                let callbacks = self
                    .world
                    .emulator
                    .http()
                    .get_raw("/_emulator/callbacks")
                    .await
                    .map(|r| r.text())
                    .unwrap_or_default();
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what}; deliveries to {to}: {list:#?}\n\
                     the daemon's view of {to}: {view}\ncallbacks: {callbacks}\n{}",
                    self.world.logs()
                );
            }
            self.advance(TICK_MS).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET path` on the admin API.
    pub async fn admin(&self, path: &str) -> Value {
        self.world.admin.get(path).await.or_fail(self)
    }

    /// The daemon's view of a contact: record, runs and timeline.
    pub async fn contact(&self, id: &str) -> Value {
        self.admin(&format!("/api/contacts/{TENANT}/{id}")).await
    }

    /// The contact's tags in the daemon's store.
    pub async fn tags(&self, id: &str) -> Vec<String> {
        let c = self.contact(id).await;
        c["contact"]["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `check` on the contact's admin view holds; returns the view.
    pub async fn wait_contact(
        &self,
        what: &str,
        id: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_admin(what, &format!("/api/contacts/{TENANT}/{id}"), check)
            .await
    }

    /// Waits until the daemon's view of group `id` (`GET /api/groups/{tenant}/{id}`)
    /// satisfies `check`; returns it.
    pub async fn wait_group(&self, what: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.wait_admin(what, &format!("/api/groups/{TENANT}/{id}"), check)
            .await
    }

    /// Moves the clocks a tick at a time until `GET path` on the admin API answers JSON that
    /// satisfies `check`; returns it.
    async fn wait_admin(&self, what: &str, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let check = &check;
        wait_for(what, DEADLINE, || async move {
            self.advance(TICK_MS).await;
            let v = self.world.admin.get_raw(path).await.ok()?.ok_json().ok()?;
            check(&v).then_some(v)
        })
        .await
        .or_fail(self)
    }

    /// The runs of `playbook` in `state` (`active`, `waiting`, `completed`, `converted`,
    /// `failed`, `cancelled`).
    pub async fn runs(&self, playbook: &str, state: &str) -> Vec<Value> {
        let v = self
            .admin(&format!(
                "/api/runs?playbook={playbook}&state={state}&limit=500"
            ))
            .await;
        v["runs"].as_array().cloned().unwrap_or_default()
    }

    /// The one run of `playbook` about `contact`, once it is in `state`.
    pub async fn wait_run(&self, playbook: &str, contact: &str, state: &str) -> Value {
        let found = wait_for(
            &format!("a {state} run of {playbook} for {contact}"),
            DEADLINE,
            || async move {
                self.advance(TICK_MS).await;
                self.runs(playbook, state).await.into_iter().find(|r| {
                    r["subject"]["contact"] == contact || r["subject"]["group"] == contact
                })
            },
        )
        .await;
        match found {
            Ok(run) => run,
            Err(e) => {
                let view = self
                    .world
                    .admin
                    .get_raw(&format!("/api/contacts/{TENANT}/{contact}"))
                    .await
                    .map(|r| r.text())
                    .unwrap_or_default();
                panic!(
                    "{e}\nthe daemon's view of {contact}: {view}\n{}",
                    self.world.logs()
                )
            }
        }
    }

    /// Deploys `source` over the admin API for `account`.
    pub async fn deploy(&self, source: &str, account: &str) -> Value {
        self.world
            .admin
            .post(
                "/api/playbooks",
                &json!({"source": source, "account": account}),
            )
            .await
            .or_fail(self)
    }

    /// Starts `playbook` by hand for `contacts`.
    pub async fn start_for(&self, playbook: &str, contacts: &[&str]) -> Value {
        self.world
            .admin
            .post(
                &format!("/api/playbooks/{playbook}/start"),
                &json!({"contacts": contacts}),
            )
            .await
            .or_fail(self)
    }
}

/// A delivery's content as text (JSON, non-ASCII kept), for `contains` checks whatever the
/// platform's content shape (`{"text": ...}`, `{"text": {"content": ...}}`, ...).
pub fn text(delivery: &Value) -> String {
    delivery["content"].to_string()
}

/// How many of `deliveries` are on `channel` and contain `needle`.
pub fn count(deliveries: &[Value], channel: &str, needle: &str) -> usize {
    deliveries
        .iter()
        .filter(|d| d["channel"] == channel && text(d).contains(needle))
        .count()
}
