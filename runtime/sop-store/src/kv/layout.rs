//! Tables and their keys. One ordered key space; the first byte names the table.
//! docs/store.md lists the same layout; change both together.

use sop_clock::Timestamp;

use super::key::Key;
use crate::contact::ContactKey;
use crate::flow::FlowKey;
use crate::group::GroupKey;
use crate::outbox::{IdempotencyKey, OutboxStateKind};
use crate::run::{RunId, RunState, Subject};
use crate::timer::TimerKey;
use crate::touch::TouchKey;

pub(crate) const META: u8 = 0x00;
pub(crate) const CONTACT: u8 = 0x01;
pub(crate) const CONTACT_IDLE: u8 = 0x02;
pub(crate) const GROUP: u8 = 0x03;
pub(crate) const RUN: u8 = 0x10;
pub(crate) const RUN_STATE: u8 = 0x11;
pub(crate) const RUN_SUBJECT: u8 = 0x12;
pub(crate) const HISTORY: u8 = 0x13;
pub(crate) const RUN_DETAIL: u8 = 0x14;
pub(crate) const TIMER: u8 = 0x20;
pub(crate) const TIMER_RUN: u8 = 0x21;
pub(crate) const SUBSCRIPTION: u8 = 0x30;
pub(crate) const SUBSCRIPTION_RUN: u8 = 0x31;
pub(crate) const SEEN: u8 = 0x40;
pub(crate) const SEEN_AT: u8 = 0x41;
pub(crate) const EVENT: u8 = 0x42;
pub(crate) const OUTBOX: u8 = 0x50;
pub(crate) const OUTBOX_STATE: u8 = 0x51;
pub(crate) const TOUCH: u8 = 0x60;
pub(crate) const CRON: u8 = 0x70;
pub(crate) const KV: u8 = 0x80;
pub(crate) const KV_EXPIRY: u8 = 0x81;
pub(crate) const PLAYBOOK: u8 = 0x90;
pub(crate) const FLOW: u8 = 0xA0;
pub(crate) const FLOW_DUE: u8 = 0xA1;
pub(crate) const FLOW_RUN: u8 = 0xA2;

pub(crate) fn meta_format() -> Vec<u8> {
    Key::table(META).str("format").into_bytes()
}

pub(crate) fn contact(c: &ContactKey) -> Vec<u8> {
    Key::table(CONTACT).contact(c).into_bytes()
}

pub(crate) fn contacts_of(tenant: &str) -> Key {
    Key::table(CONTACT).str(tenant)
}

pub(crate) fn group(g: &GroupKey) -> Vec<u8> {
    Key::table(GROUP).str(&g.tenant).str(&g.id).into_bytes()
}

pub(crate) fn groups_of(tenant: &str) -> Key {
    Key::table(GROUP).str(tenant)
}

pub(crate) fn contact_idle(c: &ContactKey, last: Option<Timestamp>) -> Vec<u8> {
    Key::table(CONTACT_IDLE)
        .str(&c.tenant)
        .opt_at(last)
        .str(&c.id)
        .into_bytes()
}

pub(crate) fn idle_of(tenant: &str) -> Key {
    Key::table(CONTACT_IDLE).str(tenant)
}

pub(crate) fn run(id: RunId) -> Vec<u8> {
    Key::table(RUN).u64(id.0).into_bytes()
}

pub(crate) fn run_detail(id: RunId) -> Vec<u8> {
    Key::table(RUN_DETAIL).u64(id.0).into_bytes()
}

pub(crate) fn run_state_prefix(playbook: &str, state: RunState) -> Key {
    Key::table(RUN_STATE).str(playbook).u8(state.code())
}

pub(crate) fn run_state(playbook: &str, state: RunState, id: RunId) -> Vec<u8> {
    run_state_prefix(playbook, state).u64(id.0).into_bytes()
}

pub(crate) fn subject_prefix(s: &Subject) -> Key {
    Key::table(RUN_SUBJECT).subject(s)
}

pub(crate) fn run_subject(s: &Subject, id: RunId) -> Vec<u8> {
    subject_prefix(s).u64(id.0).into_bytes()
}

pub(crate) fn history_prefix(run: RunId) -> Key {
    Key::table(HISTORY).u64(run.0)
}

pub(crate) fn history(run: RunId, seq: u64) -> Vec<u8> {
    history_prefix(run).u64(seq).into_bytes()
}

pub(crate) fn timer(due: Timestamp, key: &TimerKey) -> Vec<u8> {
    Key::table(TIMER)
        .at(due)
        .u64(key.run.0)
        .str(&key.name)
        .into_bytes()
}

pub(crate) fn timer_run(key: &TimerKey) -> Vec<u8> {
    Key::table(TIMER_RUN)
        .u64(key.run.0)
        .str(&key.name)
        .into_bytes()
}

pub(crate) fn timers_of_run(run: RunId) -> Key {
    Key::table(TIMER_RUN).u64(run.0)
}

pub(crate) fn subscription_prefix(subject: &Subject, event: &str) -> Key {
    Key::table(SUBSCRIPTION).subject(subject).str(event)
}

pub(crate) fn subscription(subject: &Subject, event: &str, run: RunId) -> Vec<u8> {
    subscription_prefix(subject, event).u64(run.0).into_bytes()
}

pub(crate) fn subscription_run(run: RunId, subject: &Subject, event: &str) -> Vec<u8> {
    Key::table(SUBSCRIPTION_RUN)
        .u64(run.0)
        .subject(subject)
        .str(event)
        .into_bytes()
}

pub(crate) fn subscriptions_of_run(run: RunId) -> Key {
    Key::table(SUBSCRIPTION_RUN).u64(run.0)
}

pub(crate) fn seen(source: &str, dedupe_id: &str) -> Vec<u8> {
    Key::table(SEEN).str(source).str(dedupe_id).into_bytes()
}

pub(crate) fn seen_at(at: Timestamp, source: &str, dedupe_id: &str) -> Vec<u8> {
    Key::table(SEEN_AT)
        .at(at)
        .str(source)
        .str(dedupe_id)
        .into_bytes()
}

pub(crate) fn event(seq: u64) -> Vec<u8> {
    Key::table(EVENT).u64(seq).into_bytes()
}

fn idempotency(k: Key, key: &IdempotencyKey) -> Key {
    k.u64(key.run.0).str(&key.step).u32(key.iteration)
}

pub(crate) fn outbox(key: &IdempotencyKey) -> Vec<u8> {
    idempotency(Key::table(OUTBOX), key).into_bytes()
}

pub(crate) fn outbox_state_prefix(state: OutboxStateKind) -> Key {
    Key::table(OUTBOX_STATE).u8(state.code())
}

pub(crate) fn outbox_state(state: OutboxStateKind, key: &IdempotencyKey) -> Vec<u8> {
    idempotency(outbox_state_prefix(state), key).into_bytes()
}

pub(crate) fn touch_prefix(key: &TouchKey) -> Key {
    Key::table(TOUCH)
        .contact(&key.contact)
        .str(&key.account)
        .str(&key.category)
}

pub(crate) fn touch(key: &TouchKey, at: Timestamp) -> Vec<u8> {
    touch_prefix(key).at(at).into_bytes()
}

pub(crate) fn cron(playbook: &str, trigger: &str) -> Vec<u8> {
    Key::table(CRON).str(playbook).str(trigger).into_bytes()
}

pub(crate) fn kv(plugin: &str, key: &str) -> Vec<u8> {
    Key::table(KV).str(plugin).str(key).into_bytes()
}

pub(crate) fn kv_expiry(at: Timestamp, plugin: &str, key: &str) -> Vec<u8> {
    Key::table(KV_EXPIRY)
        .at(at)
        .str(plugin)
        .str(key)
        .into_bytes()
}

pub(crate) fn playbooks() -> Key {
    Key::table(PLAYBOOK)
}

pub(crate) fn playbook_versions(id: &str) -> Key {
    Key::table(PLAYBOOK).str(id)
}

pub(crate) fn playbook(id: &str, version: u32) -> Vec<u8> {
    playbook_versions(id).u32(version).into_bytes()
}

pub(crate) fn flow(key: &FlowKey) -> Vec<u8> {
    Key::table(FLOW)
        .str(&key.playbook)
        .str(&key.key)
        .into_bytes()
}

pub(crate) fn flow_due(due_ms: i64, key: &FlowKey) -> Vec<u8> {
    Key::table(FLOW_DUE)
        .i64(due_ms)
        .str(&key.playbook)
        .str(&key.key)
        .into_bytes()
}

pub(crate) fn flow_run(run: RunId, key: &FlowKey) -> Vec<u8> {
    flows_of_run(run)
        .str(&key.playbook)
        .str(&key.key)
        .into_bytes()
}

pub(crate) fn flows_of_run(run: RunId) -> Key {
    Key::table(FLOW_RUN).u64(run.0)
}
