//! Disk full: the data directory on a small tmpfs mounted by the test.
//! Appends get RESOURCE_EXHAUSTED once the free-space reserve is reached,
//! reads keep working, nothing acknowledged is lost, appends resume when
//! space is freed, and the journal verifies. Skipped, saying why, where the
//! test cannot mount (not root, no tmpfs).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::ack;
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;
use tonic::Code;

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).output();
    match out {
        Ok(o) if o.status.success() => Ok(Mount(at.to_owned())),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_is_resource_exhausted_reads_go_on_and_appends_resume() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let _mount = match mount_tmpfs(&mnt, "16m") {
        Ok(m) => m,
        Err(why) => {
            println!("SKIPPED disk_full test: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let data = mnt.join("data");
    let mut config = common::config(&data);
    config.min_free_bytes = 4 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledger_server::serve_with_metrics(config, listener, None, async move {
        let _ = stopped.await;
    }));
    let mut c = loop {
        if let Ok(c) = LedgerServiceClient::connect(format!("http://{addr}")).await {
            break c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    c.append(ack(0)).await.unwrap();
    // Leave 5 MiB free: about 1 MiB above the reserve.
    let free = fs2::available_space(&mnt).unwrap();
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; (free - (5 << 20)) as usize]).unwrap();
    let mut acked = vec![];
    let refusal = loop {
        assert!(acked.len() < 100_000, "the disk never filled");
        match c.append(ack(acked.len() as u64 + 1)).await {
            Ok(r) => acked.push(r.into_inner().receipt.unwrap()),
            Err(e) => break e,
        }
    };
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{}", refusal.message());
    assert!(refusal.message().contains("below the reserve"), "{}", refusal.message());
    assert!(acked.len() > 100, "{} appends fitted", acked.len());
    // Reads go on, and every acknowledged entry is there.
    for r in &acked {
        let e =
            c.get(pb::GetRequest { log: "default".into(), seq: r.seq, with_proof: false }).await.unwrap().into_inner();
        assert_eq!(e.entry.unwrap().leaf_hash, r.leaf_hash);
    }
    let cp = c.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 0 }).await.unwrap().into_inner();
    assert_eq!(cp.size, acked.len() as u64 + 1);
    assert_eq!(c.append(ack(999_999)).await.unwrap_err().code(), Code::ResourceExhausted, "still full");
    // Space freed: appends resume where they stopped.
    std::fs::remove_file(&filler).unwrap();
    let r = c.append(ack(1_000_000)).await.unwrap().into_inner().receipt.unwrap();
    assert_eq!(r.seq, acked.len() as u64 + 1);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let log = ledger::layout::log_dir(&data, "default");
    let ring = ledger::keys::Keyring::load(&ledger::layout::keyring(&log)).unwrap();
    let rep = ledger::verify::verify(&ledger::verify::VerifyInput {
        journal_dir: &log.join("journal"),
        vkeys: &ring.verifiers(),
        hmac_keys: Some(&ring.hmac_keys()),
        trusted_checkpoint: Some(&r.checkpoint),
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(rep.ok, "{}", rep.to_text());
    assert_eq!(rep.entries, acked.len() as u64 + 2);
    println!(
        "disk full: {} appends fitted, refused at the reserve, resumed after freeing space; journal valid",
        acked.len()
    );
}
