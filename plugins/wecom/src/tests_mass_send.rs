//! Outcome checks of mass sends with many senders, against a scripted WeCom over the fake
//! host: each call stays within its request budget, progress survives between calls (and calls
//! that die half-way), and the final answer equals one big read.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde_json::{Value, json};
use sop_plugin_sdk::testing::{FakeHost, url_path};
use sop_plugin_sdk::{
    FetchError, Host, HttpRequest, HttpResponse, Level, OutcomeStatus, Plugin, PluginError,
};

use crate::WeCom;
use crate::actions::mass_send::{
    CONFIRM_WINDOW_MS, REQUESTS_PER_CHECK, RESULTS_RECHECK_MS, chunk_key, sender_key,
};
use crate::tests::{GETTOKEN, RESULT, TASK, accepted_mass_send, account, body_of, errcode, ok};

/// The host's default `max_http_requests`.
const HOST_REQUESTS_PER_CALL: usize = 16;
const MSGID: &str = "msgGZ";
/// Rows per `get_groupmsg_task` page, small so that the task list takes two.
const TASK_PAGE: usize = 25;

/// WeCom answering from its state by what each request asks (sender, cursor), over a
/// [`FakeHost`] that keeps the store, the clock and every request. Like the real host, it
/// refuses requests past [`HOST_REQUESTS_PER_CALL`] in one call.
struct ScriptedWeCom {
    host: FakeHost,
    /// The task list: `(userid, status)`.
    senders: RefCell<Vec<(String, i64)>>,
    /// Each sender's `send_list` pages.
    pages: BTreeMap<String, Vec<Vec<Value>>>,
    /// Requests sent before the current call.
    call_start: Cell<usize>,
    /// The request (index over all requests) answered with WeCom's "system busy".
    fail_request: Cell<Option<usize>>,
}

fn staff(i: usize) -> String {
    format!("staff{i:02}")
}

impl ScriptedWeCom {
    /// `count` senders, all confirmed. Every fifth has two pages; statuses cycle through
    /// 0–3; sender 3 has a row with an unknown status and sender 7 one without an id.
    fn new(count: usize) -> Self {
        let mut pages = BTreeMap::new();
        for i in 0..count {
            let row = |j: usize| {
                json!({"external_userid": format!("wm{i:02}-{j}"), "userid": staff(i),
                       "status": (i + j) % 4})
            };
            let mut sender_pages = if i % 5 == 0 {
                vec![vec![row(0), row(1), row(2)], vec![row(3), row(4)]]
            } else {
                vec![vec![row(0), row(1)]]
            };
            if i == 3 {
                sender_pages[0].push(json!({"external_userid": "wm03-x", "status": 9}));
            }
            if i == 7 {
                sender_pages[0].push(json!({"userid": staff(i), "status": 1}));
            }
            pages.insert(staff(i), sender_pages);
        }
        Self {
            host: FakeHost::new(0),
            senders: RefCell::new((0..count).map(|i| (staff(i), 2)).collect()),
            pages,
            call_start: Cell::new(0),
            fail_request: Cell::new(None),
        }
    }

    fn set_status(&self, sender: usize, status: i64) {
        self.senders.borrow_mut()[sender].1 = status;
    }

    fn answer(&self, request: &HttpRequest) -> Option<Result<HttpResponse, FetchError>> {
        let path = url_path(&request.url);
        if path == GETTOKEN {
            return Some(sop_plugin_sdk::testing::json_response(
                200,
                &json!({"errcode": 0, "access_token": "T", "expires_in": 7200}),
            ));
        }
        let body = body_of(request);
        assert_eq!(body["msgid"], MSGID);
        assert_eq!(body["limit"], 1000);
        let page: usize = body["cursor"]
            .as_str()
            .map_or(0, |c| c[1..].parse().unwrap());
        let cursor = |last: bool| {
            if last {
                String::new()
            } else {
                format!("p{}", page + 1)
            }
        };
        if path == TASK {
            let senders = self.senders.borrow();
            let rows: Vec<Value> = senders
                .iter()
                .skip(page * TASK_PAGE)
                .take(TASK_PAGE)
                .map(|(userid, status)| json!({"userid": userid, "status": status}))
                .collect();
            let last = (page + 1) * TASK_PAGE >= senders.len();
            return Some(ok(json!({"task_list": rows, "next_cursor": cursor(last)})));
        }
        if path == RESULT {
            let pages = &self.pages[body["userid"].as_str().unwrap()];
            let last = page + 1 == pages.len();
            return Some(ok(
                json!({"send_list": pages[page], "next_cursor": cursor(last)}),
            ));
        }
        None
    }

    /// One `check-outcome` call; asserts the requests it made stay within the budget.
    fn check(&self, handle: Option<&str>) -> Result<OutcomeStatus, PluginError> {
        let start = self.host.requests().len();
        self.call_start.set(start);
        let status = WeCom::check_outcome(
            self,
            account(),
            "mass_send_contacts".to_owned(),
            "run-1/mass_send_contacts/0".to_owned(),
            handle.map(str::to_owned),
        );
        let made = &self.host.requests()[start..];
        let posts = made.iter().filter(|r| url_path(&r.url) != GETTOKEN).count();
        assert!(
            posts <= REQUESTS_PER_CHECK,
            "{posts} requests to WeCom's API in one check"
        );
        assert!(made.len() <= HOST_REQUESTS_PER_CALL);
        status
    }

    /// Checks until done, each call but the last answering the short re-check.
    fn check_until_done(&self) -> (Value, usize) {
        for calls in 1..=30 {
            match self.check(Some(MSGID)).unwrap() {
                OutcomeStatus::Done(output) => {
                    return (serde_json::from_str(&output).unwrap(), calls);
                }
                other => assert_eq!(other, OutcomeStatus::Pending(RESULTS_RECHECK_MS)),
            }
        }
        panic!("not done after 30 checks");
    }

    /// What one read of every confirmed sender reports, in WeCom's order.
    fn expected(&self) -> Value {
        let names = ["unsent", "sent", "not_friend", "over_receive_limit"];
        let mut by_status: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut waiting = Vec::new();
        for (userid, status) in self.senders.borrow().iter() {
            if *status != 2 {
                waiting.push(userid.clone());
                continue;
            }
            for row in self.pages[userid].iter().flatten() {
                let name = names
                    .get(row["status"].as_u64().unwrap() as usize)
                    .copied()
                    .unwrap_or("unknown");
                *counts.entry(name).or_default() += 1;
                if let Some(id) = row["external_userid"].as_str() {
                    by_status.entry(name).or_default().push(id.to_owned());
                }
            }
        }
        json!({
            "msgid": MSGID,
            "sent": counts.get("sent").copied().unwrap_or(0),
            "not_friend": counts.get("not_friend").copied().unwrap_or(0),
            "over_receive_limit": counts.get("over_receive_limit").copied().unwrap_or(0),
            "unsent": counts.get("unsent").copied().unwrap_or(0),
            "senders_unconfirmed": waiting,
            "recipients": by_status,
        })
    }

    /// Asserts no progress or chunk entry of the task is left.
    fn assert_store_clean(&self) {
        for i in 0..self.pages.len() {
            let key = sender_key(MSGID, &staff(i));
            assert_eq!(self.host.kv_get(&key), None, "progress of {}", staff(i));
            for n in 0..20 {
                assert_eq!(self.host.kv_get(&chunk_key(&key, n)), None);
            }
        }
    }

    /// Requests for `sender`'s last page: a finished read of that sender.
    fn finished_reads(&self, sender: usize) -> usize {
        let last = self.pages[&staff(sender)].len() - 1;
        self.host
            .requests_to(RESULT)
            .iter()
            .map(body_of)
            .filter(|b| {
                b["userid"] == staff(sender)
                    && (last == 0 && b.get("cursor").is_none() || b["cursor"] == format!("p{last}"))
            })
            .count()
    }
}

impl Host for ScriptedWeCom {
    fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, FetchError> {
        let index = self.host.requests().len();
        if index - self.call_start.get() >= HOST_REQUESTS_PER_CALL {
            return Err(FetchError::Denied(
                "HTTP request budget of this call is spent".to_owned(),
            ));
        }
        let path = url_path(&request.url).to_owned();
        let answer = if self.fail_request.get() == Some(index) {
            Some(errcode(-1))
        } else {
            self.answer(request)
        };
        if let Some(answer) = answer {
            self.host.respond(&request.method, &path, answer);
        }
        self.host.fetch(request)
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.host.kv_get(key)
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) {
        assert!(key.len() <= 256, "kv key of {} bytes", key.len());
        assert!(
            value.len() <= 64 * 1024,
            "kv value of {} bytes",
            value.len()
        );
        self.host.kv_set(key, value, ttl_ms);
    }

    fn kv_delete(&self, key: &str) {
        self.host.kv_delete(key);
    }

    fn now_ms(&self) -> i64 {
        self.host.now_ms()
    }

    fn log(&self, level: Level, message: &str) {
        self.host.log(level, message);
    }
}

#[test]
fn a_task_of_many_senders_is_read_over_several_checks_within_the_request_budget() {
    let wecom = ScriptedWeCom::new(40);
    assert_eq!(accepted_mass_send(&wecom.host), MSGID);

    // The first check reads what its budget allows: the two task pages, then senders.
    assert_eq!(
        wecom.check(Some(MSGID)).unwrap(),
        OutcomeStatus::Pending(RESULTS_RECHECK_MS)
    );
    assert_eq!(wecom.host.requests_to(TASK).len(), 2);
    assert_eq!(wecom.host.requests_to(RESULT).len(), REQUESTS_PER_CHECK - 2);
    // An expired token costs one more request, still within the host's limit.
    wecom.host.advance_ms(3 * 3_600_000);
    let (output, calls) = wecom.check_until_done();
    assert_eq!(output, wecom.expected());
    assert!(
        calls >= 4,
        "40 senders and 8 second pages need several checks"
    );
    assert_eq!(wecom.host.requests_to(GETTOKEN).len(), 2);
    assert_eq!(output["recipients"]["unknown"], json!(["wm03-x"]));
    // The row without an id still counts.
    assert_eq!(
        output["sent"],
        output["recipients"]["sent"].as_array().unwrap().len() + 1
    );
    for i in 0..40 {
        assert_eq!(wecom.finished_reads(i), 1, "{} read once", staff(i));
    }
    wecom.assert_store_clean();
}

#[test]
fn a_check_that_died_half_way_is_repeated_without_duplicates() {
    let wecom = ScriptedWeCom::new(40);
    accepted_mass_send(&wecom.host);
    // The 7th request of the first check fails: two task pages, staff00 (two pages),
    // staff01 and staff02 are read; staff03 is not.
    let start = wecom.host.requests().len();
    wecom.fail_request.set(Some(start + 6));
    let err = wecom.check(Some(MSGID)).unwrap_err();
    assert_eq!(err.kind(), "transient");
    let staff01 = sender_key(MSGID, &staff(1));
    assert!(wecom.host.kv_get(&staff01).is_some());
    // As if a call had died after writing staff01's chunks but before its progress, having
    // read a longer answer than WeCom gives now: its chunks stay, its progress does not.
    wecom.host.kv_delete(&staff01);
    wecom
        .host
        .kv_set(&chunk_key(&staff01, 1), br#"[[1,"wmBogus"]]"#, None);

    let (output, _) = wecom.check_until_done();
    assert_eq!(output, wecom.expected());
    assert_eq!(wecom.finished_reads(1), 2);
    assert_eq!(wecom.finished_reads(2), 1);
    wecom.assert_store_clean();
    assert_eq!(wecom.host.kv_get(&chunk_key(&staff01, 1)), None);
}

#[test]
fn a_sender_confirming_between_checks_is_read_and_none_is_read_twice() {
    let wecom = ScriptedWeCom::new(30);
    wecom.set_status(29, 0);
    wecom.set_status(4, 0);
    accepted_mass_send(&wecom.host);
    // Past the window, the confirmed senders are read without waiting for the others.
    wecom.host.advance_ms(CONFIRM_WINDOW_MS);
    assert_eq!(
        wecom.check(Some(MSGID)).unwrap(),
        OutcomeStatus::Pending(RESULTS_RECHECK_MS)
    );
    wecom.set_status(29, 2);
    // After a crash the check is asked by idempotency key; the progress is the task's.
    assert_eq!(
        wecom.check(None).unwrap(),
        OutcomeStatus::Pending(RESULTS_RECHECK_MS)
    );
    let (output, _) = wecom.check_until_done();
    assert_eq!(output, wecom.expected());
    assert_eq!(output["senders_unconfirmed"], json!(["staff04"]));
    // staff29 confirmed late: its recipients are reported.
    assert!(
        output["recipients"]["sent"]
            .as_array()
            .unwrap()
            .contains(&json!("wm29-0"))
    );
    for i in (0..30).filter(|i| *i != 4) {
        assert_eq!(wecom.finished_reads(i), 1, "{} read once", staff(i));
    }
    assert_eq!(wecom.finished_reads(4), 0);
    wecom.assert_store_clean();
}

#[test]
fn a_sender_with_more_pages_than_one_check_can_read_is_a_transient_error() {
    let mut wecom = ScriptedWeCom::new(1);
    let page: Vec<Value> = (0..3)
        .map(|j| json!({"external_userid": format!("wm{j}"), "status": 1}))
        .collect();
    wecom.pages.insert(staff(0), vec![page; REQUESTS_PER_CHECK]);
    accepted_mass_send(&wecom.host);
    let err = wecom.check(Some(MSGID)).unwrap_err();
    assert_eq!(err.kind(), "transient");
    assert_eq!(wecom.host.requests_to(RESULT).len(), REQUESTS_PER_CHECK - 1);
    // Nothing half-read is kept.
    assert_eq!(wecom.host.kv_get(&sender_key(MSGID, &staff(0))), None);
}

#[test]
fn stored_rows_fit_the_store_whatever_the_ids() {
    // 2,000 rows of 200-character ids in one sender: several chunks, each under 64 KiB
    // (asserted by the scripted host's `kv_set`).
    let mut wecom = ScriptedWeCom::new(1);
    let pages: Vec<Vec<Value>> = (0..2)
        .map(|p| {
            (0..1000)
                .map(|j| json!({"external_userid": format!("{p}-{j}-{}", "x".repeat(200)), "status": 1}))
                .collect()
        })
        .collect();
    wecom.pages.insert(staff(0), pages);
    accepted_mass_send(&wecom.host);
    let (output, calls) = wecom.check_until_done();
    assert_eq!(calls, 1);
    assert_eq!(output["sent"], 2000);
    assert_eq!(output, wecom.expected());
    wecom.assert_store_clean();
}
