//! Customer groups: `groupchat/list` and `groupchat/get`.

use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Query, WxError, call, parse_body};
use crate::app::App;
use crate::ids;

#[derive(Deserialize, Default)]
struct OwnerFilter {
    #[serde(default)]
    userid_list: Vec<String>,
}

#[derive(Deserialize)]
struct ListReq {
    #[serde(default)]
    status_filter: u32,
    #[serde(default)]
    owner_filter: Option<OwnerFilter>,
    #[serde(default)]
    cursor: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn list(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "externalcontact/groupchat/list", &q, |st, _, _| {
        let req: ListReq = parse_body(&body)?;
        let limit = req
            .limit
            .filter(|l| (1..=1_000).contains(l))
            .ok_or(WxError::INVALID_PARAMETER)? as usize;
        let owners = req.owner_filter.unwrap_or_default().userid_list;
        if owners.len() > 100 || req.status_filter > 3 {
            return Err(WxError::INVALID_PARAMETER);
        }
        let owners: Vec<u32> = owners.iter().filter_map(|u| ids::parse_staff(u)).collect();
        let filtered = !owners.is_empty();
        // Every emulated group is in status 0 (normal); other filters match nothing.
        let wanted = req.status_filter == 0;
        let start: usize = req.cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut out = Vec::new();
        let mut next = String::new();
        for (i, g) in st.world.groups.iter().enumerate().skip(start) {
            if !wanted || g.dismissed || (filtered && !owners.contains(&g.owner)) {
                continue;
            }
            if out.len() == limit {
                next = i.to_string();
                break;
            }
            out.push(json!({"chat_id": ids::chat_id(i as u32), "status": 0}));
        }
        Ok(json!({"group_chat_list": out, "next_cursor": next}))
    })
}

#[derive(Deserialize)]
struct GetReq {
    chat_id: String,
    #[serde(default)]
    need_name: u8,
}

pub(super) async fn get(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "externalcontact/groupchat/get", &q, |st, _, _| {
        let req: GetReq = parse_body(&body)?;
        let idx = ids::parse_chat(&req.chat_id).ok_or(WxError::INVALID_CHAT_ID)?;
        let g = st
            .world
            .groups
            .get(idx as usize)
            .filter(|g| !g.dismissed)
            .ok_or(WxError::INVALID_CHAT_ID)?;
        let owner = ids::staff_id(g.owner);
        let mut members = vec![json!({
            "userid": owner,
            "type": 1,
            "join_time": g.created_at_s,
            "join_scene": 1,
            "invitor": {"userid": owner},
            "group_nickname": "",
            "name": if req.need_name == 1 { owner.clone() } else { String::new() },
        })];
        members.extend(g.members.iter().map(|&(c, joined)| {
            let mut m = json!({
                "userid": ids::contact_id(c),
                "type": 2,
                "join_time": joined,
                "join_scene": 3,
                "invitor": {"userid": owner},
                "group_nickname": "",
                "unionid": ids::union_id(c),
            });
            if req.need_name == 1 {
                m["name"] = Value::from(ids::contact_name(c));
            }
            m
        }));
        let version: u64 = g.members.iter().fold(g.members.len() as u64, |h, &(c, t)| {
            h.rotate_left(5) ^ u64::from(c) ^ (u64::from(t) << 20)
        });
        Ok(json!({
            "group_chat": {
                "chat_id": req.chat_id,
                "name": format!("emu group {idx}"),
                "owner": owner,
                "create_time": g.created_at_s,
                "notice": "",
                "member_list": members,
                "admin_list": [],
                "member_version": format!("{version:016x}"),
            }
        }))
    })
}
