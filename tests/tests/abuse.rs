//! Limits that hold under abuse, measured on the real ledgerd: clients that
//! open Tail and Query streams and never read them do not make the
//! server's memory follow the log's size (docs/SECURITY.md "Limits").

use ledger_e2e::Ledgerd;
use ledger_proto::v1 as pb;
use ledger_proto::v1::ledger_service_client::LedgerServiceClient;

/// Entries of ~40 KB: 1,500 of them are ~60 MB of payload.
const ENTRIES: usize = 1_500;
const PAYLOAD: usize = 40_000;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}

async fn fill(c: &mut LedgerServiceClient<tonic::transport::Channel>) {
    let filler = "x".repeat(PAYLOAD);
    let reqs: Vec<pb::AppendRequest> = (0..ENTRIES)
        .map(|i| pb::AppendRequest {
            log: "default".into(),
            entry: Some(pb::EntryInput {
                category: "stage4_incident".into(),
                subject: format!("INC-{}", i % 3),
                payload: format!(r#"{{"i":{i},"log":"{filler}"}}"#).into_bytes(),
                ..Default::default()
            }),
            actor: "loader".into(),
        })
        .collect();
    let mut st = c.append_stream(tokio_stream::iter(reqs)).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(m) = st.message().await.unwrap() {
        assert!(matches!(m.result, Some(pb::append_stream_response::Result::Receipt(_))), "{m:?}");
        n += 1;
    }
    assert_eq!(n, ENTRIES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_tail_and_query_consumers_do_not_grow_server_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Ledgerd::start(&dir.path().join("data"), &[]);
    let pid = server.pid().unwrap();
    let mut c = LedgerServiceClient::connect(server.url.clone()).await.unwrap().max_decoding_message_size(16 << 20);
    fill(&mut c).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = rss_bytes(pid);

    // 8 Tails from the start and 8 Queries of 10,000 entries, never read.
    let (mut tails, mut queries) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let ch = tonic::transport::Channel::from_shared(server.url.clone()).unwrap().connect().await.unwrap();
        let mut t = LedgerServiceClient::new(ch.clone());
        tails.push(t.tail(pb::TailRequest { log: "default".into(), ..Default::default() }).await.unwrap());
        let q = pb::QueryRequest { log: "default".into(), limit: 10_000, ..Default::default() };
        queries.push(t.query(q).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let stalled = rss_bytes(pid);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let later = rss_bytes(pid);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let log_mib = (ENTRIES * PAYLOAD) as f64 / (1 << 20) as f64;
    eprintln!(
        "RSS before {:.1} MiB, 16 stalled streams {:.1} MiB, 2 s later {:.1} MiB (log {log_mib:.0} MiB; buffering it per stream would be {:.0} MiB)",
        mib(before),
        mib(stalled),
        mib(later),
        16.0 * log_mib
    );
    // Bound: per stream one page (1 MiB) + 16 buffered entries + HTTP/2
    // send buffers; 16 streams stay far below one copy of the log.
    assert!(later.saturating_sub(before) < 48 << 20, "grew {:.1} MiB", mib(later.saturating_sub(before)));
    assert!(later.saturating_sub(stalled) < 8 << 20, "still growing: {:.1} MiB", mib(later.saturating_sub(stalled)));

    // A reader that does read gets everything, in order, meanwhile.
    let mut q = pb::QueryRequest { log: "default".into(), limit: 10_000, ..Default::default() };
    let mut seen = 0u64;
    loop {
        let mut st = c.query(q.clone()).await.unwrap().into_inner();
        let mut cursor = None;
        while let Some(m) = st.message().await.unwrap() {
            match m.item {
                Some(pb::query_response::Item::Entry(e)) => {
                    assert_eq!(e.seq, seen);
                    seen += 1;
                }
                Some(pb::query_response::Item::NextCursor(c)) => cursor = Some(c),
                None => {}
            }
        }
        match cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ENTRIES as u64);
    drop((tails, queries));
}
