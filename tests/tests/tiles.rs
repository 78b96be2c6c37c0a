//! The C2SP tiles of a real ledgerd (docs/FORMAT.md §12): served on its
//! HTTP listener for a log that opts in (403 for one that does not), with
//! the spec's caching headers; read by an independent client written from
//! the spec alone (`tests/clients/tlog_tiles_check.py`, Python's standard
//! library); mirrored by `ledger mirror`, then again fetching only what is
//! new; verified by `ledger verify --tiles` from the copy and from the URL;
//! a damaged copy named by kind.

use std::io::{Read as _, Write as _};
use std::path::Path;

use ledger_e2e::{Ledgerd, ledger};
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;

async fn append(url: &str, from: usize, n: usize) {
    let mut c = LedgerServiceClient::connect(url.to_owned()).await.unwrap();
    let reqs: Vec<pb::AppendRequest> = (from..from + n)
        .map(|i| pb::AppendRequest {
            log: "default".into(),
            entry: Some(pb::EntryInput {
                category: "stage4_incident".into(),
                subject: format!("INC-{}", i % 5),
                payload: format!(r#"{{"step":{i}}}"#).into_bytes(),
                ..Default::default()
            }),
            actor: "loader".into(),
        })
        .collect();
    let mut st = c.append_stream(tokio_stream::iter(reqs)).await.unwrap().into_inner();
    let mut got = 0;
    while let Some(m) = st.message().await.unwrap() {
        assert!(matches!(m.result, Some(pb::append_stream_response::Result::Receipt(_))), "{m:?}");
        got += 1;
    }
    assert_eq!(got, n);
}

/// One raw GET: (status line, headers, body).
fn get(http: &str, path: &str) -> (String, String, Vec<u8>) {
    let addr = http.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (status.to_owned(), headers.to_lowercase(), raw[split + 4..].to_vec())
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("ledgerd.toml");
    std::fs::write(&path, "[[logs]]\nname = \"default\"\npublic_tiles = true\n\n[[logs]]\nname = \"private\"\n")
        .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_are_served_read_by_an_independent_client_mirrored_incrementally_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let server = Ledgerd::start(&dir.path().join("data"), &["--config", cfg.to_str().unwrap()]);
    append(&server.url, 0, 70_000).await;
    let prefix = format!("{}/tlog/default", server.http);

    // the spec's resources and headers; a log that did not opt in is refused
    let (status, headers, body) = get(&server.http, "/tlog/default/tile/0/x001/x000/000");
    assert!(status.contains("404"), "{status}: beyond the tree");
    let (status, headers_full, tile) = get(&server.http, "/tlog/default/tile/1/000");
    assert!(status.contains("200"), "{status}");
    assert_eq!(tile.len(), 8192, "a full level-1 tile");
    assert!(headers_full.contains("cache-control: public, max-age=31536000, immutable"), "{headers_full}");
    assert!(headers_full.contains("content-type: application/octet-stream"), "{headers_full}");
    let (_, cp_headers, note) = get(&server.http, "/tlog/default/checkpoint");
    assert!(cp_headers.contains("max-age=2") && cp_headers.contains("text/plain"), "{cp_headers}");
    assert!(String::from_utf8_lossy(&note).contains("\n70000\n"));
    let (status, _, why) = get(&server.http, "/tlog/private/checkpoint");
    assert!(status.contains("403") && String::from_utf8_lossy(&why).contains("public_tiles"), "{status}");
    let (status, _, _) = get(&server.http, "/tlog/default/tile/0/01");
    assert!(status.contains("400"), "{status}: {headers} {body:?}");

    // an independent reader agrees with the checkpoint
    let py = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/tlog_tiles_check.py"))
        .arg(&prefix)
        .output()
        .expect("python3 (installed by .ci/run)");
    let out = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "{out}{}", String::from_utf8_lossy(&py.stderr));
    assert!(out.contains(r#""root_ok": true"#) && out.contains(r#""entries": 70000"#), "{out}");

    // mirror, then mirror again after more entries: only what is new is fetched
    let vkey = dir.path().join("vkey");
    let keys = ledger(&server.url, dir.path(), &["keys", "public"]);
    std::fs::write(&vkey, &keys.stdout).unwrap();
    let copy = dir.path().join("copy");
    let (copy_s, vkey_s) = (copy.to_str().unwrap(), vkey.to_str().unwrap());
    let first = ledger(&server.url, dir.path(), &["mirror", &prefix, copy_s, "--vkey", vkey_s, "--output", "json"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert_eq!(first.json()["tree_size"], 70_000);
    assert_eq!(first.json()["fetched"], 551, "every tile and bundle of 70,000 entries");
    append(&server.url, 70_000, 1_000).await;
    let again = ledger(&server.url, dir.path(), &["mirror", &prefix, copy_s, "--vkey", vkey_s, "--output", "json"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.json()["tree_size"], 71_000);
    let fetched = again.json()["fetched"].as_u64().unwrap();
    assert!(fetched <= 12, "only the new tiles: {fetched}");
    let (from, checked) = (again.json()["first_seq"].clone(), again.json()["entries"].clone());
    assert_eq!((from, checked), (serde_json::json!(70_000), serde_json::json!(1_000)), "only the new entries verified");
    assert!(!copy.join("tile/0/273.p/112").exists(), "the earlier partial tile is gone");

    // the copy and the URL verify; a damaged copy is named
    for target in [copy_s, prefix.as_str()] {
        let v = ledger(&server.url, dir.path(), &["verify", "--tiles", target, "--vkey", vkey_s, "--output", "json"]);
        assert_eq!(v.code, 0, "{target}: {}{}", v.stdout, v.stderr);
        assert_eq!(v.json()["tree_size"], 71_000);
    }
    let bundle = copy.join("tile/entries/007");
    let mut b = std::fs::read(&bundle).unwrap();
    b[40] ^= 1;
    std::fs::write(&bundle, b).unwrap();
    let bad = ledger(&server.url, dir.path(), &["verify", "--tiles", copy_s, "--vkey", vkey_s, "--output", "json"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert_eq!(bad.json()["findings"][0]["kind"], "leaf_invalid");
}
