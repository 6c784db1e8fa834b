//! The harness itself: both processes start wired to each other, a callback flows through
//! the daemon back to the emulator, and the daemon survives SIGKILL and stops on SIGTERM.

use std::time::Duration;

use serde_json::{Value, json};
use sop_harness::{World, WorldSpec, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

/// The welcome deliveries to `contact` so far.
async fn welcomes(world: &World, contact: &str) -> Vec<Value> {
    let all = world.emulator.deliveries().await.unwrap();
    all.into_iter()
        .filter(|d| d["channel"] == "welcome" && d["to"] == contact)
        .collect()
}

async fn add_contact(world: &World) -> String {
    let added = world
        .emulator
        .post("/_emulator/events", &json!({"kind": "add_contact"}))
        .await
        .unwrap();
    added["external_userid"]
        .as_str()
        .unwrap_or_else(|| panic!("add_contact answered {added}"))
        .to_owned()
}

#[tokio::test]
async fn a_callback_flows_through_the_daemon_which_survives_kill_9_and_stops_on_sigterm() {
    let mut world = World::start(WorldSpec::demo()).await.unwrap();

    // The daemon's ingress answers the platform's URL verification through the plugin.
    let verified = world
        .emulator
        .post("/_emulator/wecom/verify_url", &json!({}))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));
    assert_eq!(verified["ok"], true);

    let first = add_contact(&world).await;
    wait_for("the first welcome", DEADLINE, || async {
        let n = welcomes(&world, &first).await.len();
        (n > 0).then_some(n)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));

    // SIGKILL, restart on the same data dir: the new contact is welcomed, the first is not
    // welcomed again, and the WeCom plugin's access token, kept in its key-value store (the
    // daemon's store), is not fetched again.
    let tokens = || async {
        let counters = world.emulator.get("/_emulator/counters").await.unwrap();
        counters["endpoints"]["gettoken"]["calls"]
            .as_u64()
            .unwrap_or(0)
    };
    let tokens_before = tokens().await;
    assert!(tokens_before >= 1, "the first welcome fetched a token");
    world.daemon.kill9().unwrap();
    world.daemon.restart().await.unwrap();
    assert_eq!(world.daemon.starts(), 2);
    let second = add_contact(&world).await;
    wait_for("the second welcome", DEADLINE, || async {
        (!welcomes(&world, &second).await.is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));
    assert_eq!(welcomes(&world, &first).await.len(), 1, "welcomed once");
    assert_eq!(
        tokens().await,
        tokens_before,
        "the cached token survived the kill"
    );
    assert!(
        world
            .daemon
            .metric("sop_ingress_events_total")
            .await
            .unwrap()
            >= 1.0
    );

    // The admin API shows the second contact's welcome run (whatever became of it).
    let contact = world
        .admin
        .get(&format!("/api/contacts/demo-brand/{second}"))
        .await
        .unwrap();
    assert_eq!(contact["runs"][0]["playbook"], "welcome", "{contact}");

    let status = world.daemon.terminate(DEADLINE).await.unwrap();
    assert!(
        status.success(),
        "graceful exit: {status}\n{}",
        world.logs()
    );
    assert!(world.daemon.log().contains("sop stopped"));
}
