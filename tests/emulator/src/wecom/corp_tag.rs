//! The customer tag library: `externalcontact/get_corp_tag_list`, `add_corp_tag`,
//! `del_corp_tag` (企业客户标签管理), over [`crate::tags::TagLibrary`].

use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Query, WxError, call, parse_body};
use crate::app::App;
use crate::ids;
use crate::tags::{MAX_NAME_CHARS, TagLibrary};

/// 40071: a tag of that name already exists in the group. The WeCom pages we had do not
/// state this answer; clients should not rely on its code (the sop plugin re-reads the
/// library after any refusal of `add_corp_tag`).
const TAG_NAME_EXISTS: WxError = WxError::new(40071, "UserTag Name Already Exist");

#[derive(Deserialize, Default)]
struct ListReq {
    #[serde(default)]
    tag_id: Vec<String>,
    #[serde(default)]
    group_id: Vec<String>,
}

fn tag_json(lib: &TagLibrary, t: u32, with_deleted: bool) -> Value {
    let tag = &lib.tags[t as usize];
    let mut v = json!({
        "id": ids::tag_id(t),
        "name": tag.name,
        "create_time": tag.created_at_s,
        "order": 0,
    });
    if with_deleted {
        v["deleted"] = tag.deleted.into();
    }
    v
}

fn group_json(lib: &TagLibrary, g: u32, tags: Vec<Value>, with_deleted: bool) -> Value {
    let group = &lib.groups[g as usize];
    let mut v = json!({
        "group_id": ids::tag_group_id(g),
        "group_name": group.name,
        "create_time": group.created_at_s,
        "order": 0,
        "tag": tags,
    });
    if with_deleted {
        v["deleted"] = group.deleted.into();
    }
    v
}

/// Without filters: every live group with its live tags. With `group_id`: those groups with
/// all their tags, deleted ones marked (`tag_id` is then ignored, as documented). With only
/// `tag_id`: those tags under their groups, deleted ones marked. Unknown ids are left out.
pub(super) async fn get_corp_tag_list(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "externalcontact/get_corp_tag_list", &q, |st, _, _| {
        // An empty body asks for everything.
        let req: ListReq = if body.iter().all(u8::is_ascii_whitespace) {
            ListReq::default()
        } else {
            parse_body(&body)?
        };
        let lib = &st.world.tags;
        let mut out = Vec::new();
        if !req.group_id.is_empty() {
            for g in req.group_id.iter().filter_map(|g| ids::parse_tag_group(g)) {
                if lib.group(g).is_none() {
                    continue;
                }
                let tags = (0..lib.tags.len() as u32)
                    .filter(|&t| lib.tags[t as usize].group == g)
                    .map(|t| tag_json(lib, t, true))
                    .collect();
                out.push(group_json(lib, g, tags, true));
            }
        } else if !req.tag_id.is_empty() {
            let wanted: Vec<u32> = req
                .tag_id
                .iter()
                .filter_map(|t| ids::parse_tag(t))
                .filter(|&t| (t as usize) < lib.tags.len())
                .collect();
            let mut groups: Vec<u32> = wanted.iter().map(|&t| lib.tags[t as usize].group).collect();
            groups.sort_unstable();
            groups.dedup();
            for g in groups {
                let tags = wanted
                    .iter()
                    .filter(|&&t| lib.tags[t as usize].group == g)
                    .map(|&t| tag_json(lib, t, true))
                    .collect();
                out.push(group_json(lib, g, tags, true));
            }
        } else {
            for g in 0..lib.groups.len() as u32 {
                if lib.groups[g as usize].deleted {
                    continue;
                }
                let tags = lib
                    .live_tags_of(g)
                    .map(|(t, _)| tag_json(lib, t, false))
                    .collect();
                out.push(group_json(lib, g, tags, false));
            }
        }
        Ok(json!({ "tag_group": out }))
    })
}

#[derive(Deserialize)]
struct NewTag {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    order: Option<u32>,
}

#[derive(Deserialize)]
struct AddReq {
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    order: Option<u32>,
    #[serde(default)]
    tag: Vec<NewTag>,
    #[serde(default)]
    #[allow(dead_code)]
    agentid: Option<i64>,
}

fn bad_name(name: &str) -> bool {
    name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS
}

/// Adds tags to the group `group_id`, or to the group called `group_name` (created when there
/// is none: WeCom creates no empty groups, so `tag` must not be empty). Several tags of one
/// name in a request create one.
pub(super) async fn add_corp_tag(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "externalcontact/add_corp_tag", &q, |st, _, now| {
        let req: AddReq = parse_body(&body)?;
        let now_s = u32::try_from(now / 1_000).unwrap_or(u32::MAX);
        if req.tag.is_empty() || req.tag.iter().any(|t| bad_name(&t.name)) {
            return Err(WxError::INVALID_PARAMETER);
        }
        let lib = &mut st.world.tags;
        // `group_id` wins over `group_name`, as documented.
        let existing = match (&req.group_id, &req.group_name) {
            (Some(id), _) if !id.is_empty() => Some(
                ids::parse_tag_group(id)
                    .filter(|&g| lib.group(g).is_some_and(|g| !g.deleted))
                    .ok_or(WxError::INVALID_TAG)?,
            ),
            (_, Some(name)) if !bad_name(name) => lib.live_group_named(name),
            _ => return Err(WxError::INVALID_PARAMETER),
        };
        let mut names: Vec<&str> = req.tag.iter().map(|t| t.name.as_str()).collect();
        let mut seen = Vec::new();
        names.retain(|n| {
            let new = !seen.contains(n);
            seen.push(*n);
            new
        });
        if let Some(g) = existing
            && names.iter().any(|n| lib.live_tag_named(g, n).is_some())
        {
            return Err(TAG_NAME_EXISTS);
        }
        let g = match existing {
            Some(g) => g,
            None => lib.group_named_or_new(req.group_name.as_deref().unwrap_or_default(), now_s),
        };
        let created: Vec<u32> = names.iter().map(|n| lib.add_tag(g, n, now_s)).collect();
        let tags = created.iter().map(|&t| tag_json(lib, t, false)).collect();
        Ok(json!({ "tag_group": group_json(lib, g, tags, false) }))
    })
}

#[derive(Deserialize)]
struct DelReq {
    #[serde(default)]
    tag_id: Vec<String>,
    #[serde(default)]
    group_id: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    agentid: Option<i64>,
}

/// Deletes tags and whole groups (an operator cleaning up the library). Contacts lose the
/// deleted tags.
pub(super) async fn del_corp_tag(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "externalcontact/del_corp_tag", &q, |st, _, _| {
        let req: DelReq = parse_body(&body)?;
        if req.tag_id.is_empty() && req.group_id.is_empty() {
            return Err(WxError::INVALID_PARAMETER);
        }
        let lib = &st.world.tags;
        let tags = req
            .tag_id
            .iter()
            .map(|t| {
                ids::parse_tag(t)
                    .filter(|&t| lib.live_tag(t).is_some())
                    .ok_or(WxError::INVALID_TAG)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let groups = req
            .group_id
            .iter()
            .map(|g| {
                ids::parse_tag_group(g)
                    .filter(|&g| lib.group(g).is_some_and(|g| !g.deleted))
                    .ok_or(WxError::INVALID_TAG)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lib = &mut st.world.tags;
        for t in tags {
            lib.delete_tag(t);
        }
        for g in groups {
            lib.delete_group(g);
        }
        let lib = &st.world.tags;
        for c in &mut st.world.contacts {
            if let Some(extra) = c.extra.as_deref_mut() {
                extra.tags.retain(|&t| lib.live_tag(t).is_some());
            }
        }
        Ok(json!({}))
    })
}
