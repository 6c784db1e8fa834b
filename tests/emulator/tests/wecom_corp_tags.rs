//! The customer tag library: listing, creating and deleting corp tags, and `mark_tag` with
//! created and deleted ids.

mod common;

use common::Emu;
use serde_json::{Value, json};
use sop_emulator::Config;

struct Api<'a> {
    emu: &'a Emu,
    token: String,
}

impl Api<'_> {
    async fn post(&self, name: &str, body: &Value) -> Value {
        let url = format!(
            "/cgi-bin/externalcontact/{name}?access_token={}",
            self.token
        );
        self.emu.http.post(&url, body).await
    }
}

#[tokio::test]
async fn created_tags_are_listed_and_can_be_put_on_contacts() {
    let mut config = Config::default();
    config.world.tags = 5;
    let emu = Emu::start(config).await;
    let api = Api {
        emu: &emu,
        token: emu.wecom_token().await,
    };

    // The seeded library: five tags in two groups.
    let all = api.post("get_corp_tag_list", &json!({})).await;
    assert_eq!(all["errcode"], 0, "{all}");
    let groups = all["tag_group"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group_name"], "emu_group_0");
    assert_eq!(groups[0]["tag"].as_array().unwrap().len(), 4);
    assert_eq!(groups[1]["tag"][0]["name"], "emu_tag_4");
    let list_url = format!(
        "/cgi-bin/externalcontact/get_corp_tag_list?access_token={}",
        api.token
    );
    let (_, empty) = emu
        .http
        .raw("POST", &list_url, &[], String::new())
        .await
        .unwrap();
    assert!(
        empty.contains("emu_tag_4"),
        "an empty body lists everything: {empty}"
    );
    let (_, broken) = emu
        .http
        .raw("POST", &list_url, &[], "{".into())
        .await
        .unwrap();
    assert!(broken.contains("47001"), "{broken}");

    // A new group by name, with duplicate names in one request created once.
    let added = api
        .post(
            "add_corp_tag",
            &json!({"group_name": "sop", "tag": [{"name": "channel:channel_2"}, {"name": "vip"}, {"name": "vip"}]}),
        )
        .await;
    assert_eq!(added["errcode"], 0, "{added}");
    let group_id = added["tag_group"]["group_id"].as_str().unwrap().to_owned();
    assert_eq!(added["tag_group"]["group_name"], "sop");
    let created = added["tag_group"]["tag"].as_array().unwrap();
    assert_eq!(created.len(), 2, "{added}");
    let channel_tag = created[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(created[0]["name"], "channel:channel_2");

    // The same group name again adds to that group; by group_id too.
    let more = api
        .post(
            "add_corp_tag",
            &json!({"group_name": "sop", "tag": [{"name": "late"}]}),
        )
        .await;
    assert_eq!(more["tag_group"]["group_id"], group_id.as_str(), "{more}");
    let by_id = api
        .post(
            "add_corp_tag",
            &json!({"group_id": group_id, "group_name": "ignored", "tag": [{"name": "later"}]}),
        )
        .await;
    assert_eq!(by_id["tag_group"]["group_name"], "sop", "{by_id}");
    // A name taken in the group, no tags, a name too long, an unknown group: refused.
    for (body, code) in [
        (
            json!({"group_id": group_id, "tag": [{"name": "vip"}]}),
            40071,
        ),
        (json!({"group_name": "empty", "tag": []}), 40058),
        (
            json!({"group_name": "sop", "tag": [{"name": "x".repeat(31)}]}),
            40058,
        ),
        (json!({"tag": [{"name": "nowhere"}]}), 40058),
        (
            json!({"group_id": "etEmuG999999", "tag": [{"name": "a"}]}),
            40068,
        ),
    ] {
        assert_eq!(
            api.post("add_corp_tag", &body).await["errcode"],
            code,
            "{body}"
        );
    }

    let listed = api
        .post("get_corp_tag_list", &json!({"group_id": [group_id]}))
        .await;
    let names: Vec<&str> = listed["tag_group"][0]["tag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["channel:channel_2", "vip", "late", "later"]);

    // mark_tag takes the created id, and externalcontact/get shows it by name.
    let added = emu
        .event(json!({"kind": "add_contact", "staff": "emu_staff_0"}))
        .await;
    let contact = added["external_userid"].as_str().unwrap();
    let mark =
        json!({"userid": "emu_staff_0", "external_userid": contact, "add_tag": [channel_tag]});
    assert_eq!(api.post("mark_tag", &mark).await["errcode"], 0);
    let got = emu
        .http
        .get(&format!(
            "/cgi-bin/externalcontact/get?access_token={}&external_userid={contact}",
            api.token
        ))
        .await;
    let tags = &got["follow_user"][0]["tags"];
    assert_eq!(tags[0]["tag_name"], "channel:channel_2", "{got}");
    assert_eq!(tags[0]["group_name"], "sop");
}

#[tokio::test]
async fn deleted_tags_are_refused_by_mark_tag_and_marked_when_asked_for() {
    let emu = Emu::start(Config::default()).await;
    let api = Api {
        emu: &emu,
        token: emu.wecom_token().await,
    };
    let added = api
        .post(
            "add_corp_tag",
            &json!({"group_name": "sop", "tag": [{"name": "a"}, {"name": "b"}]}),
        )
        .await;
    let a = added["tag_group"]["tag"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = added["tag_group"]["tag"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group_id = added["tag_group"]["group_id"].as_str().unwrap().to_owned();
    let contact = emu
        .event(json!({"kind": "add_contact", "staff": "emu_staff_0"}))
        .await["external_userid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mark =
        |tag: &str| json!({"userid": "emu_staff_0", "external_userid": contact, "add_tag": [tag]});
    assert_eq!(api.post("mark_tag", &mark(&a)).await["errcode"], 0);

    assert_eq!(
        api.post("del_corp_tag", &json!({"tag_id": [a]})).await["errcode"],
        0
    );
    assert_eq!(api.post("mark_tag", &mark(&a)).await["errcode"], 40068);
    assert_eq!(
        api.post("del_corp_tag", &json!({"tag_id": [a]})).await["errcode"],
        40068,
        "already deleted"
    );
    assert_eq!(api.post("del_corp_tag", &json!({})).await["errcode"], 40058);
    // The contact lost it.
    let got = emu
        .http
        .get(&format!(
            "/cgi-bin/externalcontact/get?access_token={}&external_userid={contact}",
            api.token
        ))
        .await;
    assert_eq!(got["follow_user"][0]["tags"], json!([]), "{got}");

    // Asked by id, the deleted tag shows as deleted; the full list leaves it out.
    let by_id = api
        .post("get_corp_tag_list", &json!({"tag_id": [a, b]}))
        .await;
    let tags = by_id["tag_group"][0]["tag"].as_array().unwrap();
    assert_eq!(tags[0]["deleted"], true, "{by_id}");
    assert_eq!(tags[1]["deleted"], false);
    let all = api.post("get_corp_tag_list", &json!({})).await;
    let sop = all["tag_group"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_name"] == "sop")
        .unwrap();
    assert_eq!(sop["tag"].as_array().unwrap().len(), 1, "{sop}");

    // Deleting the group deletes its tags; a new `sop` group gets a new id.
    assert_eq!(
        api.post("del_corp_tag", &json!({"group_id": [group_id]}))
            .await["errcode"],
        0
    );
    assert_eq!(api.post("mark_tag", &mark(&b)).await["errcode"], 40068);
    let again = api
        .post(
            "add_corp_tag",
            &json!({"group_name": "sop", "tag": [{"name": "a"}]}),
        )
        .await;
    assert_eq!(again["errcode"], 0, "{again}");
    assert_ne!(again["tag_group"]["group_id"], group_id.as_str());
}
