//! A real full disk under the daemon (issue #9): its data directory on a small tmpfs, filled
//! by another file while new contacts keep arriving. The daemon stops taking callbacks (503,
//! `/readyz` says why, `sop_store_writable` is 0) and loses nothing; once the file is
//! removed it takes work again by itself, without a restart, and every contact is welcomed
//! exactly once.
//!
//! Needs permission to mount a tmpfs (root, as in CI's containers); without it the test says
//! why and checks nothing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use sop_harness::{Http, Profile, World, wait_for};
use sop_reliability::{Audit, WELCOME, spec};

/// A tmpfs of `bytes`, unmounted on drop.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).expect("the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&mount)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self { _dir: dir, mount }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Writes `path` until the disk is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("the ballast file");
    let chunk = vec![7u8; 64 * 1024];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_data()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}

/// A new contact on the emulator (a callback to the daemon); its id.
async fn add_contact(emulator: &Http) -> String {
    let answer = emulator
        .post("/_emulator/events", &json!({"kind": "add_contact"}))
        .await
        .expect("the emulator takes add_contact");
    answer["external_userid"]
        .as_str()
        .unwrap_or_else(|| panic!("add_contact answered {answer}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_stops_intake_and_work_resumes_without_a_restart_once_space_returns() {
    let Some(disk) = SmallDisk::mount(48 * 1024 * 1024) else {
        return;
    };
    let data_dir = disk.path().join("data");
    let mut spec = spec(Profile::Debug, 5, 20);
    spec.config_template = spec.config_template.replace(
        "\"@WORK@/data\"",
        &format!("{:?}", data_dir.display().to_string()),
    );
    assert!(spec.config_template.contains(&*data_dir.to_string_lossy()));
    let world = World::start(spec).await.unwrap_or_else(|e| panic!("{e}"));
    let emulator = world.emulator.http().clone();
    let admin = world.admin.clone();
    let mut added = vec![add_contact(&emulator).await];

    // The disk fills up; contacts keep coming until the daemon can no longer commit them.
    fill(&disk.path().join("ballast"));
    let noticed = std::time::Instant::now() + Duration::from_secs(120);
    let reason = loop {
        let ready = admin.get_raw("/readyz").await.expect("/readyz answers");
        if ready.status == 503 {
            break ready.text();
        }
        assert!(
            std::time::Instant::now() < noticed,
            "the daemon never noticed the full disk\n{}",
            world.logs()
        );
        added.push(add_contact(&emulator).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(reason.contains("out of disk space"), "{reason}");
    assert_eq!(
        world.daemon.metric("sop_store_writable").await.unwrap(),
        0.0
    );
    // Contacts that arrive now are refused with 503 and retried by the platform.
    for _ in 0..3 {
        added.push(add_contact(&emulator).await);
    }
    let refused = wait_for("a refused callback", Duration::from_secs(30), || {
        let emulator = emulator.clone();
        async move {
            let c = emulator.get("/_emulator/counters").await.ok()?;
            let pending = c["events_generated"].as_u64()?
                > c["callbacks_acked"].as_u64()? + c["callbacks_failed"].as_u64()?;
            pending.then_some(())
        }
    })
    .await;
    assert!(refused.is_ok(), "no callback was waiting: {refused:?}");

    // Space returns: the daemon's probe reopens the store and it takes work again.
    std::fs::remove_file(disk.path().join("ballast")).unwrap();
    wait_for(
        "the daemon to be ready again",
        Duration::from_secs(60),
        || {
            let admin = admin.clone();
            async move { (admin.get_raw("/readyz").await.ok()?.status == 200).then_some(()) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));
    assert_eq!(
        world.daemon.metric("sop_store_writable").await.unwrap(),
        1.0
    );
    assert_eq!(world.daemon.starts(), 1, "the daemon was not restarted");

    wait_for(
        "every contact to be welcomed",
        Duration::from_secs(180),
        || {
            let (admin, emulator) = (admin.clone(), emulator.clone());
            async move { sop_reliability::work_finished(&admin, &emulator, &[WELCOME]).await }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", world.logs()));
    let audit = Audit::read(&admin, &emulator, &[WELCOME])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Vec::new();
    for contact in &added {
        let delivered = audit.delivered(contact, "welcome");
        if delivered != 1 {
            problems.push(format!("{contact}: welcome delivered {delivered} times"));
        }
    }
    println!(
        "full disk: {} contacts, {} before the disk filled, all welcomed once: {}",
        added.len(),
        added.len() - 3,
        problems.is_empty()
    );
    assert!(problems.is_empty(), "{problems:#?}\n{}", world.logs());
}
