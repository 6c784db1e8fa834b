//! The admin API: JSON over HTTP under `/api`, a bearer token on every route (see
//! [`auth`](crate::auth)). Reads go straight to the store; changes go through the runtime.
//! Every route is listed in [`ROUTES`] and documented in `runtime/sop/openapi.json`.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, patch, post};
use axum::{Json, Router, middleware};
use serde::Deserialize;
use serde_json::{Value, json};
use sop_clock::Clock;
use sop_runtime::{GroupEdit, ManualAudience, PlaybookSource, Plugins, RuntimeError};
use sop_store::{
    ContactKey, GroupKey, IdempotencyKey, OutboxStateKind, RunId, RunState, Store, Subject,
};

use crate::auth::{Scope, require};
use crate::state::{ReloadRequest, Shared};

/// Every admin route: method, path (axum syntax), scope.
pub const ROUTES: &[(&str, &str, Scope)] = &[
    ("GET", "/api/playbooks", Scope::Read),
    ("GET", "/api/playbooks/{id}", Scope::Read),
    ("GET", "/api/playbooks/{id}/versions/{version}", Scope::Read),
    ("POST", "/api/playbooks/validate", Scope::Read),
    ("POST", "/api/playbooks", Scope::Admin),
    ("POST", "/api/playbooks/{id}/pause", Scope::Admin),
    ("POST", "/api/playbooks/{id}/resume", Scope::Admin),
    ("POST", "/api/playbooks/{id}/drain", Scope::Admin),
    ("POST", "/api/playbooks/{id}/start", Scope::Admin),
    ("GET", "/api/runs", Scope::Read),
    ("GET", "/api/runs/{id}", Scope::Read),
    ("POST", "/api/runs/{id}/cancel", Scope::Admin),
    ("GET", "/api/contacts/{tenant}/{id}", Scope::Read),
    ("POST", "/api/contacts/{tenant}/{id}/opt-out", Scope::Admin),
    ("POST", "/api/contacts/{tenant}/{id}/opt-in", Scope::Admin),
    ("GET", "/api/groups/{tenant}", Scope::Read),
    ("GET", "/api/groups/{tenant}/{id}", Scope::Read),
    ("PATCH", "/api/groups/{tenant}/{id}", Scope::Admin),
    ("GET", "/api/outbox", Scope::Read),
    ("GET", "/api/gate", Scope::Read),
    ("POST", "/api/reload", Scope::Admin),
    ("GET", "/api/clock", Scope::Read),
    ("POST", "/api/clock", Scope::Admin),
];

/// Largest page any list route returns.
const MAX_PAGE: usize = 500;

/// The admin router (`/api/...`): exactly the routes of [`ROUTES`], each behind the token
/// scope listed there. Built from that table so that no route can be added without a scope
/// (or be missing from the tests and the OpenAPI check, which walk the same table).
pub fn router(shared: Shared, max_body_bytes: usize) -> Router {
    let mut router = Router::new();
    for &(method, path, scope) in ROUTES {
        let Some(handler) = handler(method, path) else {
            panic!("admin route {method} {path} is listed in ROUTES but has no handler");
        };
        router = router.route(
            path,
            handler.route_layer(middleware::from_fn_with_state(
                (shared.clone(), scope),
                require,
            )),
        );
    }
    router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(shared)
}

/// The handler of one route of [`ROUTES`].
fn handler(method: &str, path: &str) -> Option<MethodRouter<Shared>> {
    Some(match (method, path) {
        ("GET", "/api/playbooks") => get(list_playbooks),
        ("GET", "/api/playbooks/{id}") => get(playbook),
        ("GET", "/api/playbooks/{id}/versions/{version}") => get(playbook_version),
        ("POST", "/api/playbooks/validate") => post(validate),
        ("POST", "/api/playbooks") => post(deploy),
        ("POST", "/api/playbooks/{id}/pause") => post(pause),
        ("POST", "/api/playbooks/{id}/resume") => post(resume),
        ("POST", "/api/playbooks/{id}/drain") => post(drain),
        ("POST", "/api/playbooks/{id}/start") => post(start),
        ("GET", "/api/runs") => get(list_runs),
        ("GET", "/api/runs/{id}") => get(run),
        ("POST", "/api/runs/{id}/cancel") => post(cancel),
        ("GET", "/api/contacts/{tenant}/{id}") => get(contact),
        ("POST", "/api/contacts/{tenant}/{id}/opt-out") => post(opt_out),
        ("POST", "/api/contacts/{tenant}/{id}/opt-in") => post(opt_in),
        ("GET", "/api/groups/{tenant}") => get(list_groups),
        ("GET", "/api/groups/{tenant}/{id}") => get(group),
        ("PATCH", "/api/groups/{tenant}/{id}") => patch(edit_group),
        ("GET", "/api/outbox") => get(outbox),
        ("GET", "/api/gate") => get(gate),
        ("POST", "/api/reload") => post(reload),
        ("GET", "/api/clock") => get(clock),
        ("POST", "/api/clock") => post(move_clock),
        _ => return None,
    })
}

/// A JSON error body `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// An admin route's failure.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

impl From<sop_store::StoreError> for ApiError {
    fn from(e: sop_store::StoreError) -> Self {
        tracing::error!(error = %e, "admin API: store error");
        ApiError(store_status(&e), e.to_string())
    }
}

/// A full or read-only disk is temporary (503, try again); anything else is ours (500).
fn store_status(e: &sop_store::StoreError) -> StatusCode {
    if e.is_write_fault() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        let status = match &e {
            RuntimeError::Invalid(_) | RuntimeError::BadRequest(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RuntimeError::UnknownPlaybook(_)
            | RuntimeError::UnknownRun(_)
            | RuntimeError::UnknownGroup(_) => StatusCode::NOT_FOUND,
            RuntimeError::Store(e) => store_status(e),
            RuntimeError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn not_found(what: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, what.into())
}

fn bad_request(what: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, what.into())
}

type ApiResult = Result<Json<Value>, ApiError>;

fn store(shared: &Shared) -> &dyn Store {
    &**shared.runtime().store()
}

fn limit(requested: Option<usize>) -> usize {
    requested.unwrap_or(100).clamp(1, MAX_PAGE)
}

// --- playbooks

async fn list_playbooks(State(shared): State<Shared>) -> ApiResult {
    let mut out = Vec::new();
    for id in store(&shared).playbook_ids()? {
        let versions = store(&shared).playbook_versions(&id)?;
        let deployment = shared.runtime().deployment(&id);
        out.push(json!({
            "id": id,
            "versions": versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            "current": deployment.as_ref().map(|d| json!({
                "version": d.version, "tenant": d.tenant, "account": d.account,
                "name": d.playbook.name,
            })),
        }));
    }
    Ok(Json(json!({ "playbooks": out })))
}

async fn playbook(State(shared): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let versions = store(&shared).playbook_versions(&id)?;
    if versions.is_empty() {
        return Err(not_found(format!("no playbook {id}")));
    }
    let deployment = shared.runtime().deployment(&id);
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({"version": v.version, "origin": v.origin, "digest": v.digest,
                   "deployed_at": v.deployed_at.to_rfc3339()})
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "versions": versions,
        "current": deployment.as_ref().map(|d| json!({
            "version": d.version, "tenant": d.tenant, "account": d.account,
        })),
    })))
}

async fn playbook_version(
    State(shared): State<Shared>,
    Path((id, version)): Path<(String, u32)>,
) -> ApiResult {
    let v = store(&shared)
        .playbook(&id, version)?
        .ok_or_else(|| not_found(format!("no version {version} of playbook {id}")))?;
    Ok(Json(json!({
        "id": v.id, "version": v.version, "origin": v.origin, "digest": v.digest,
        "deployed_at": v.deployed_at.to_rfc3339(), "source": v.source,
    })))
}

/// A playbook sent over the API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceBody {
    /// The YAML.
    source: String,
    /// The account its runs act for; default: the configured account for its tenant.
    account: Option<String>,
}

async fn validate(State(shared): State<Shared>, Json(body): Json<SourceBody>) -> ApiResult {
    let loaded = sop_dsl::load(&body.source, Some(shared.plugins().catalog()));
    let diagnostics: Vec<Value> = loaded
        .diagnostics
        .iter()
        .map(|d| {
            serde_json::to_value(sop_dsl::render::JsonDiagnostic::new(d, "api", &body.source))
                .unwrap_or(Value::Null)
        })
        .collect();
    let ok = !loaded.diagnostics.iter().any(|d| d.is_error());
    Ok(Json(json!({ "ok": ok, "diagnostics": diagnostics })))
}

async fn deploy(State(shared): State<Shared>, Json(body): Json<SourceBody>) -> ApiResult {
    let loaded = sop_dsl::load(&body.source, Some(shared.plugins().catalog()));
    if loaded.has_errors() {
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let j = sop_dsl::render::JsonDiagnostic::new(d, "api", &body.source);
                format!("{}:{}: {} {}", j.line, j.column, d.code, d.message)
            })
            .collect();
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the playbook has errors:\n  - {}", errors.join("\n  - ")),
        ));
    }
    let pb = &loaded.playbook;
    let (tenant, account) = match (&body.account, shared.runtime().deployment(&pb.id)) {
        (Some(acc), _) => {
            let a = shared
                .plugins()
                .accounts()
                .get(acc)
                .ok_or_else(|| bad_request(format!("unknown account {acc}")))?;
            (a.tenant.clone(), acc.clone())
        }
        (None, Some(d)) => (d.tenant.clone(), d.account.clone()),
        (None, None) => {
            return Err(bad_request(
                "a new playbook needs \"account\" (the platform account its runs act for)",
            ));
        }
    };
    let report = shared.runtime().deploy(vec![PlaybookSource {
        origin: "api".into(),
        source: body.source,
        tenant,
        account,
    }])?;
    tracing::info!(playbook = %pb.id, "deployed over the admin API");
    Ok(Json(deploy_json(&report)))
}

/// A deploy report as JSON.
pub fn deploy_json(report: &sop_runtime::DeployReport) -> Value {
    json!({ "playbooks": report.playbooks.iter().map(|p| json!({
        "id": p.id, "version": p.version, "changed": p.changed, "removed_steps": p.removed_steps,
    })).collect::<Vec<_>>() })
}

async fn pause(State(shared): State<Shared>, Path(id): Path<String>) -> ApiResult {
    shared.runtime().pause(&id)?;
    tracing::info!(playbook = %id, "paused over the admin API");
    Ok(Json(json!({ "id": id, "paused": true })))
}

async fn resume(State(shared): State<Shared>, Path(id): Path<String>) -> ApiResult {
    shared.runtime().resume(&id)?;
    tracing::info!(playbook = %id, "resumed over the admin API");
    Ok(Json(json!({ "id": id, "paused": false })))
}

/// Why something is done (cancel, drain).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

async fn drain(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Reason>>,
) -> ApiResult {
    let reason = body
        .and_then(|b| b.0.reason)
        .unwrap_or_else(|| "drained by operator".into());
    let cancelled = shared.runtime().drain(&id, &reason).await?;
    Ok(Json(
        json!({ "id": id, "paused": true, "cancelled": cancelled }),
    ))
}

/// Who a manual start is for: exactly one of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    contacts: Option<Vec<String>>,
    groups: Option<Vec<String>>,
    #[serde(default)]
    everyone: bool,
}

async fn start(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<StartBody>,
) -> ApiResult {
    let audience = match (body.contacts, body.groups, body.everyone) {
        (Some(c), None, false) => ManualAudience::Contacts(c),
        (None, Some(g), false) => ManualAudience::Groups(g),
        (None, None, true) => ManualAudience::Everyone,
        _ => {
            return Err(bad_request(
                "give exactly one of \"contacts\", \"groups\" or \"everyone\": true",
            ));
        }
    };
    let receipt = shared.runtime().start_manual(&id, audience, "api").await?;
    Ok(Json(json!({
        "enrolled": receipt.enrolled.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "skipped": receipt.skipped.iter().map(|(s, why)| json!({"subject": s, "reason": why})).collect::<Vec<_>>(),
    })))
}

// --- runs

/// `GET /api/runs` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    playbook: String,
    state: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

fn parse_state(s: &str) -> Result<RunState, ApiError> {
    RunState::ALL
        .into_iter()
        .find(|st| format!("{st:?}").eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            bad_request(format!(
                "state must be one of active, waiting, completed, failed, converted, cancelled; got {s}"
            ))
        })
}

fn parse_run_id(s: &str) -> Result<RunId, ApiError> {
    s.strip_prefix('r')
        .unwrap_or(s)
        .parse()
        .map(RunId)
        .map_err(|_| bad_request(format!("not a run id: {s}")))
}

async fn list_runs(State(shared): State<Shared>, Query(q): Query<RunsQuery>) -> ApiResult {
    let states = match &q.state {
        Some(s) => vec![parse_state(s)?],
        None => vec![RunState::Active, RunState::Waiting],
    };
    let after = q.after.as_deref().map(parse_run_id).transpose()?;
    let limit = limit(q.limit);
    let mut runs = Vec::new();
    for state in states {
        for id in store(&shared).runs_by_state(&q.playbook, state, after, limit)? {
            if let Some(run) = store(&shared).run(id)? {
                runs.push(run_summary(&run));
            }
        }
    }
    runs.truncate(limit);
    let next = (runs.len() == limit)
        .then(|| {
            runs.last()
                .and_then(|r| r["id"].as_str().map(str::to_owned))
        })
        .flatten();
    Ok(Json(json!({ "runs": runs, "next": next })))
}

fn run_summary(run: &sop_store::Run) -> Value {
    json!({
        "id": run.id.to_string(), "playbook": run.playbook, "version": run.version,
        "subject": subject_json(&run.subject), "state": format!("{:?}", run.state).to_lowercase(),
        "step": run.step, "reason": run.reason,
        "created_at": run.created_at.to_rfc3339(), "updated_at": run.updated_at.to_rfc3339(),
    })
}

/// A contact's or group's runs, briefly.
fn subject_runs(runs: &[sop_store::RunSummary]) -> Vec<Value> {
    runs.iter()
        .map(|r| {
            json!({"id": r.id.to_string(), "playbook": r.playbook, "version": r.version,
                   "state": format!("{:?}", r.state).to_lowercase()})
        })
        .collect()
}

fn subject_json(s: &Subject) -> Value {
    match s {
        Subject::Contact(k) => json!({"contact": k.id, "tenant": k.tenant}),
        Subject::Group { tenant, id } => json!({"group": id, "tenant": tenant}),
    }
}

/// `?after=&limit=` paging of a run's history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn run(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult {
    let id = parse_run_id(&id)?;
    let run = store(&shared)
        .run(id)?
        .ok_or_else(|| not_found(format!("no run {id}")))?;
    let history = store(&shared).history(id, q.after, limit(q.limit))?;
    let (timers, subscriptions) = store(&shared).waits_of_run(id)?;
    let mut out = run_summary(&run);
    out["iteration"] = json!(run.iteration);
    out["variables"] = Value::Object(run.variables.clone());
    out["counters"] = json!(run.counters);
    out["history"] = history
        .iter()
        .map(|(seq, h)| {
            json!({"seq": seq, "at": h.at.to_rfc3339(), "step": h.step, "input": h.input,
               "outcome": h.outcome, "gate": h.gate})
        })
        .collect();
    out["timers"] = timers
        .iter()
        .map(|t| json!({"name": t.key.name, "due": t.due.to_rfc3339(), "step": t.step}))
        .collect();
    out["subscriptions"] = serde_json::to_value(&subscriptions).unwrap_or(Value::Null);
    Ok(Json(out))
}

async fn cancel(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<Reason>>,
) -> ApiResult {
    let id = parse_run_id(&id)?;
    if store(&shared).run(id)?.is_none() {
        return Err(not_found(format!("no run {id}")));
    }
    let reason = body
        .and_then(|b| b.0.reason)
        .unwrap_or_else(|| "cancelled by operator".into());
    shared.runtime().cancel_run(id, &reason).await?;
    Ok(Json(json!({ "id": id.to_string(), "cancelled": true })))
}

// --- contacts

async fn contact(
    State(shared): State<Shared>,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult {
    let key = ContactKey::new(tenant, id);
    let contact = store(&shared).contact(&key)?;
    let runs = store(&shared).runs_of_subject(&Subject::Contact(key.clone()))?;
    if contact.is_none() && runs.is_empty() {
        return Err(not_found(format!(
            "no contact {} in {}",
            key.id, key.tenant
        )));
    }
    // The timeline: every run's history, merged by time (bounded per run).
    let mut timeline = Vec::new();
    for summary in &runs {
        for (seq, h) in store(&shared).history(summary.id, None, MAX_PAGE)? {
            timeline.push((
                h.at,
                summary.id,
                seq,
                json!({"at": h.at.to_rfc3339(), "run": summary.id.to_string(),
                       "playbook": summary.playbook, "step": h.step, "input": h.input,
                       "outcome": h.outcome, "gate": h.gate}),
            ));
        }
    }
    timeline.sort_by_key(|a| (a.0, a.1, a.2));
    Ok(Json(json!({
        "contact": contact.as_ref().map(|c| record_json(c, &c.attributes)),
        "runs": subject_runs(&runs),
        "timeline": timeline.into_iter().map(|t| t.3).collect::<Vec<_>>(),
    })))
}

// --- groups

/// A contact or group record as JSON, its attributes as an object (the store keeps them as
/// JSON text, which is how they would serialize).
fn record_json(
    record: &impl serde::Serialize,
    attributes: &serde_json::Map<String, Value>,
) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    v["attributes"] = Value::Object(attributes.clone());
    v
}

/// `?after=&limit=` paging by id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn list_groups(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let limit = limit(q.limit);
    let groups = store(&shared).groups(&tenant, q.after.as_deref(), limit)?;
    let next = (groups.len() == limit)
        .then(|| groups.last().map(|g| g.key.id.clone()))
        .flatten();
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| record_json(g, &g.attributes))
        .collect();
    Ok(Json(json!({ "groups": groups, "next": next })))
}

async fn group(
    State(shared): State<Shared>,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult {
    let key = GroupKey::new(tenant, id);
    let group = store(&shared)
        .group(&key)?
        .ok_or_else(|| not_found(format!("no group {} in {}", key.id, key.tenant)))?;
    let runs = store(&shared).runs_of_subject(&Subject::Group {
        tenant: key.tenant.clone(),
        id: key.id.clone(),
    })?;
    Ok(Json(json!({
        "group": record_json(&group, &group.attributes),
        "runs": subject_runs(&runs),
    })))
}

async fn edit_group(
    State(shared): State<Shared>,
    Path((tenant, id)): Path<(String, String)>,
    Json(edit): Json<GroupEdit>,
) -> ApiResult {
    let key = GroupKey::new(tenant, id);
    let group = shared.runtime().edit_group(&key, &edit).await?;
    tracing::info!(tenant = %key.tenant, group = %key.id, "group edited over the admin API");
    Ok(Json(
        json!({ "group": record_json(&group, &group.attributes) }),
    ))
}

async fn set_consent(shared: &Shared, tenant: String, id: String, opted_out: bool) -> ApiResult {
    let key = ContactKey::new(tenant, id);
    shared
        .runtime()
        .set_consent(&key, opted_out, "admin-api", "api")
        .await?;
    tracing::info!(tenant = %key.tenant, opted_out, "consent changed over the admin API");
    Ok(Json(
        json!({ "tenant": key.tenant, "contact": key.id, "opted_out": opted_out }),
    ))
}

async fn opt_out(
    State(shared): State<Shared>,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult {
    set_consent(&shared, tenant, id, true).await
}

async fn opt_in(
    State(shared): State<Shared>,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult {
    set_consent(&shared, tenant, id, false).await
}

// --- outbox, gate, reload

/// `GET /api/outbox` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    /// `unknown` (default), `pending`, `accepted`, `failed` or `sent`.
    state: Option<String>,
    /// The last key of the previous page (`r12.step.0`).
    after: Option<String>,
    limit: Option<usize>,
}

fn parse_outbox_state(s: &str) -> Result<OutboxStateKind, ApiError> {
    Ok(match s {
        "unknown" => OutboxStateKind::Unknown,
        "pending" => OutboxStateKind::Pending,
        "accepted" => OutboxStateKind::Accepted,
        "failed" => OutboxStateKind::Failed,
        "sent" => OutboxStateKind::Sent,
        other => {
            return Err(bad_request(format!(
                "state must be one of unknown, pending, accepted, failed, sent; got {other}"
            )));
        }
    })
}

/// Parses `r<run>.<step>.<iteration>`, the form keys are shown in.
fn parse_outbox_key(s: &str) -> Result<IdempotencyKey, ApiError> {
    let bad = || {
        bad_request(format!(
            "not an outbox key (r<run>.<step>.<iteration>): {s}"
        ))
    };
    let (head, iteration) = s.rsplit_once('.').ok_or_else(bad)?;
    let (run, step) = head.split_once('.').ok_or_else(bad)?;
    Ok(IdempotencyKey::new(
        parse_run_id(run).map_err(|_| bad())?,
        step,
        iteration.parse().map_err(|_| bad())?,
    ))
}

async fn outbox(State(shared): State<Shared>, Query(q): Query<OutboxQuery>) -> ApiResult {
    let state = parse_outbox_state(q.state.as_deref().unwrap_or("unknown"))?;
    let after = q.after.as_deref().map(parse_outbox_key).transpose()?;
    let limit = limit(q.limit);
    let entries = store(&shared).outbox_in_state(state, after.as_ref(), limit)?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.key.to_string()))
        .flatten();
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({"key": e.key.to_string(), "action": e.action, "account": e.account,
               "delivery": e.delivery, "state": e.state, "attempts": e.attempts,
               "created_at": e.created_at.to_rfc3339(), "updated_at": e.updated_at.to_rfc3339()})
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "next": next })))
}

async fn gate(State(shared): State<Shared>) -> ApiResult {
    match shared.gate() {
        Some(g) => Ok(Json(
            serde_json::to_value(g.snapshot()).unwrap_or(Value::Null),
        )),
        None => Ok(Json(
            json!({"decisions": BTreeMap::<String, u64>::new(), "accounts": []}),
        )),
    }
}

async fn reload(State(shared): State<Shared>) -> ApiResult {
    let Some(tx) = shared.reloader() else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "reload is not available".into(),
        ));
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    tx.send(ReloadRequest { reply })
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()))?;
    match answer.await {
        Ok(Ok(summary)) => Ok(Json(summary)),
        Ok(Err(why)) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, why)),
        Err(_) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".into(),
        )),
    }
}

// --- the manual clock (tests and simulations only)

async fn clock(State(shared): State<Shared>) -> ApiResult {
    let now = shared
        .manual_clock()
        .map_or_else(chrono::Utc::now, Clock::now);
    Ok(Json(json!({
        "now_ms": now.timestamp_millis(), "now": now.to_rfc3339(),
        "manual": shared.manual_clock().is_some(),
    })))
}

/// `POST /api/clock`: where to move the manual clock.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockMove {
    /// Move forward by this many milliseconds.
    advance_ms: Option<u64>,
    /// Move to this Unix time in milliseconds (then add `advance_ms`, if given).
    set_ms: Option<u64>,
}

/// Moves the manual clock forward and wakes what became due. Never backwards: the runtime's
/// committed timers and history assume time only grows. The whole move is checked before
/// any of it is made, so a refused request changes nothing.
async fn move_clock(State(shared): State<Shared>, Json(body): Json<ClockMove>) -> ApiResult {
    let Some(clock) = shared.manual_clock() else {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "the daemon runs on the system clock (start it with --manual-clock to move time)"
                .into(),
        ));
    };
    if body.advance_ms.is_none() && body.set_ms.is_none() {
        return Err(bad_request("give \"advance_ms\" or \"set_ms\""));
    }
    let now = clock.now();
    let base = match body.set_ms {
        Some(t) => i64::try_from(t)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .ok_or_else(|| bad_request("set_ms is out of range"))?,
        None => now,
    };
    let advance = i64::try_from(body.advance_ms.unwrap_or(0))
        .ok()
        .and_then(chrono::TimeDelta::try_milliseconds)
        .ok_or_else(|| bad_request("advance_ms is out of range"))?;
    let target = base
        .checked_add_signed(advance)
        .ok_or_else(|| bad_request("the clock would leave its range"))?;
    if target < now {
        return Err(bad_request(format!(
            "the clock never goes backwards: {} is before now ({})",
            target.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    let woken = clock.advance_to(target);
    tracing::info!(now = %target, woken, "manual clock moved over the admin API");
    Ok(Json(json!({
        "now_ms": target.timestamp_millis(), "now": target.to_rfc3339(), "woken": woken,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_parse_as_they_are_shown() {
        assert_eq!(parse_run_id("r12").unwrap(), RunId(12));
        assert_eq!(parse_run_id("12").unwrap(), RunId(12));
        assert!(parse_run_id("rx").is_err());
        let key = IdempotencyKey::new(RunId(7), "welcome", 2);
        assert_eq!(parse_outbox_key(&key.to_string()).unwrap(), key);
        assert!(parse_outbox_key("r7.welcome").is_err());
        assert_eq!(parse_state("Waiting").unwrap(), RunState::Waiting);
        assert!(parse_state("asleep").is_err());
        assert!(parse_outbox_state("lost").is_err());
    }

    #[test]
    fn every_listed_route_has_a_handler_and_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (method, path, _) in ROUTES {
            assert!(handler(method, path).is_some(), "{method} {path}");
            assert!(
                seen.insert((method, path)),
                "{method} {path} is listed twice"
            );
        }
    }
}
