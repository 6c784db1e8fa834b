//! External contacts: `externalcontact/get`, `list`, `mark_tag`, `remark`.

use axum::body::Bytes;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Query, WxError, call, parse_body};
use crate::app::App;
use crate::ids;
use crate::tags::TagLibrary;
use crate::world::{ContactExtra, NO_CHANNEL, World};

/// Friendship of `contact` with `staff` (userid), or the error WeCom gives.
pub(crate) fn friend_of(world: &World, staff: &str, contact: &str) -> Result<(u32, u32), WxError> {
    let s = ids::parse_staff(staff)
        .filter(|&s| world.has_staff(s))
        .ok_or(WxError::INVALID_USERID)?;
    let c = ids::parse_contact(contact).ok_or(WxError::INVALID_EXTERNAL_USERID)?;
    match world.contact(c) {
        Some(x) if x.owner == s && x.is_friend() => Ok((s, c)),
        Some(_) => Err(WxError::NOT_EXTERNAL_CONTACT),
        None => Err(WxError::INVALID_EXTERNAL_USERID),
    }
}

/// A contact's tag as `externalcontact/get` shows it, if the tag is still live.
fn tag_json(tags: &TagLibrary, t: u32) -> Option<Value> {
    let tag = tags.live_tag(t)?;
    let group = tags.group(tag.group)?;
    Some(json!({
        "group_name": group.name,
        "tag_name": tag.name,
        "tag_id": ids::tag_id(t),
        "type": 1,
    }))
}

#[derive(Serialize)]
struct GetAnswer<'a> {
    external_contact: ExternalContact<'a>,
    follow_user: [FollowUser; 1],
    next_cursor: &'static str,
}

#[derive(Serialize)]
struct ExternalContact<'a> {
    external_userid: &'a str,
    name: String,
    position: &'static str,
    avatar: String,
    corp_name: &'static str,
    corp_full_name: &'static str,
    #[serde(rename = "type")]
    kind: u8,
    gender: u8,
    unionid: String,
}

#[derive(Serialize)]
struct FollowUser {
    userid: String,
    remark: String,
    description: String,
    createtime: u32,
    tags: Vec<Value>,
    remark_corp_name: String,
    remark_mobiles: Vec<String>,
    oper_userid: String,
    add_way: u8,
    state: String,
}

pub(super) async fn get(AxState(app): AxState<App>, AxQuery(q): AxQuery<Query>) -> Response {
    call(&app, "externalcontact/get", &q, |st, _, _| {
        let id = q
            .get("external_userid")
            .ok_or(WxError::INVALID_EXTERNAL_USERID)?;
        let idx = ids::parse_contact(id).ok_or(WxError::INVALID_EXTERNAL_USERID)?;
        let c = st
            .world
            .contact(idx)
            .ok_or(WxError::INVALID_EXTERNAL_USERID)?;
        if !c.is_friend() {
            return Err(WxError::NOT_EXTERNAL_CONTACT);
        }
        let extra = c.extra.as_deref().cloned().unwrap_or_default();
        let (state, add_way) = if c.channel == NO_CHANNEL {
            (String::new(), 0)
        } else {
            (ids::channel_state(c.channel), 1)
        };
        Ok(GetAnswer {
            external_contact: ExternalContact {
                external_userid: id,
                name: ids::contact_name(idx),
                position: "",
                avatar: format!("https://emu.invalid/avatar/{idx}"),
                corp_name: "",
                corp_full_name: "",
                kind: 1,
                gender: c.gender,
                unionid: ids::union_id(idx),
            },
            follow_user: [FollowUser {
                userid: ids::staff_id(c.owner),
                remark: extra.remark,
                description: extra.description,
                createtime: c.added_at_s,
                tags: extra
                    .tags
                    .iter()
                    .filter_map(|&t| tag_json(&st.world.tags, t))
                    .collect(),
                remark_corp_name: extra.remark_company,
                remark_mobiles: extra.remark_mobiles,
                oper_userid: ids::staff_id(c.owner),
                add_way,
                state,
            }],
            next_cursor: "",
        })
    })
}

pub(super) async fn list(AxState(app): AxState<App>, AxQuery(q): AxQuery<Query>) -> Response {
    call(&app, "externalcontact/list", &q, |st, _, _| {
        let staff = q
            .get("userid")
            .and_then(|u| ids::parse_staff(u))
            .filter(|&s| st.world.has_staff(s))
            .ok_or(WxError::INVALID_USERID)?;
        let ids: Vec<String> = st
            .world
            .contacts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.owner == staff && c.is_friend())
            .map(|(i, _)| ids::contact_id(i as u32))
            .collect();
        if ids.is_empty() {
            // The platform answers a member without customers with 84061.
            return Err(WxError::NOT_EXTERNAL_CONTACT);
        }
        Ok(json!({ "external_userid": ids }))
    })
}

#[derive(Deserialize)]
struct MarkTag {
    userid: String,
    external_userid: String,
    #[serde(default)]
    add_tag: Vec<String>,
    #[serde(default)]
    remove_tag: Vec<String>,
}

pub(super) async fn mark_tag(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "externalcontact/mark_tag", &q, |st, _, _| {
        let req: MarkTag = parse_body(&body)?;
        let (_, c) = friend_of(&st.world, &req.userid, &req.external_userid)?;
        let tags = &st.world.tags;
        // A deleted tag is as unknown as one that never existed.
        let parse = |list: &[String]| -> Result<Vec<u32>, WxError> {
            list.iter()
                .map(|t| {
                    ids::parse_tag(t)
                        .filter(|&i| tags.live_tag(i).is_some())
                        .ok_or(WxError::INVALID_TAG)
                })
                .collect()
        };
        let add = parse(&req.add_tag)?;
        let remove = parse(&req.remove_tag)?;
        if add.is_empty() && remove.is_empty() {
            return Err(WxError::INVALID_PARAMETER);
        }
        let contact = st
            .world
            .contact_mut(c)
            .ok_or(WxError::INVALID_EXTERNAL_USERID)?;
        let extra = contact.extra.get_or_insert_with(Box::default);
        for t in add {
            if !extra.tags.contains(&t) {
                extra.tags.push(t);
            }
        }
        extra.tags.retain(|t| !remove.contains(t));
        Ok(json!({}))
    })
}

#[derive(Deserialize)]
struct Remark {
    userid: String,
    external_userid: String,
    remark: Option<String>,
    description: Option<String>,
    remark_company: Option<String>,
    remark_mobiles: Option<Vec<String>>,
}

pub(super) async fn remark(
    AxState(app): AxState<App>,
    AxQuery(q): AxQuery<Query>,
    body: Bytes,
) -> Response {
    call(&app, "externalcontact/remark", &q, |st, _, _| {
        let req: Remark = parse_body(&body)?;
        let (_, c) = friend_of(&st.world, &req.userid, &req.external_userid)?;
        let too_long =
            |s: &Option<String>, max: usize| s.as_deref().is_some_and(|s| s.chars().count() > max);
        if too_long(&req.remark, 20) || too_long(&req.description, 150) {
            return Err(WxError::INVALID_PARAMETER);
        }
        let contact = st
            .world
            .contact_mut(c)
            .ok_or(WxError::INVALID_EXTERNAL_USERID)?;
        let extra: &mut ContactExtra = contact.extra.get_or_insert_with(Box::default);
        if let Some(r) = req.remark {
            extra.remark = r;
        }
        if let Some(d) = req.description {
            extra.description = d;
        }
        if let Some(rc) = req.remark_company {
            extra.remark_company = rc;
        }
        if let Some(m) = req.remark_mobiles {
            extra.remark_mobiles = m;
        }
        Ok(json!({}))
    })
}
