//! ledgerd behaviour against a real server on a loopback port.

mod common;

use common::{TestServer, ack, input, req};
use ledger::receipt::TlogProof;
use ledger_proto::v1 as pb;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_receipt_is_durable_and_verifies_offline() {
    let mut s = TestServer::start(|_| {}).await;
    let mut c = s.ledger().await;
    let r = c.append(ack(1)).await.unwrap().into_inner().receipt.unwrap();
    // At receipt time the frame is already in the journal file.
    let journal = s.log_dir().join("journal");
    let (first, seg) = ledger::journal::list_segments(&journal).unwrap().pop().unwrap();
    let mut scan = ledger::journal::SegmentScanner::open(&seg, first, None).unwrap();
    assert!(scan.next_frame().unwrap().is_some(), "the entry is in the journal before the receipt");
    let vkeys = common::vkeys(&s).await;
    let v = TlogProof::parse(&r.tlog_proof).unwrap().verify(&vkeys, None).unwrap();
    assert_eq!(v.leaf_hash.to_vec(), r.leaf_hash);
    assert_eq!(v.leaf.unwrap().actor, "svc-test");
    let got = c.get(pb::GetRequest { log: "default".into(), seq: r.seq, with_proof: true }).await.unwrap().into_inner();
    assert_eq!(got.entry.unwrap().leaf, r.leaf);
    assert!(TlogProof::parse(&got.receipt.unwrap().tlog_proof).unwrap().verify(&vkeys, None).is_ok());
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_request_id_returns_the_same_receipt_and_conflicts_are_already_exists() {
    let mut s = TestServer::start(|_| {}).await;
    let mut c = s.ledger().await;
    let mut e = input("alert_ack", "INC-1", r#"{"alert":"x"}"#);
    e.request_id = "req-42".into();
    let a = c.append(req(e.clone())).await.unwrap().into_inner().receipt.unwrap();
    let b = c.append(req(e.clone())).await.unwrap().into_inner().receipt.unwrap();
    assert_eq!((a.seq, &a.leaf_hash), (b.seq, &b.leaf_hash));
    assert!(b.duplicate);
    e.payload = br#"{"alert":"y"}"#.to_vec();
    let err = c.append(req(e)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("req-42") && err.message().contains("entry 0"), "{}", err.message());
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let mut s = TestServer::start(|_| {}).await;
    let mut c = s.ledger().await;
    c.append(ack(0)).await.unwrap();
    let before = common::snapshot(&s.log_dir().join("journal"));
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(70_000));
    let mut many = input("alert_ack", "", "{}");
    many.artifacts = vec![
        pb::ArtifactRef {
            blake3: vec![0; 32],
            sha256: vec![0; 32],
            size: 1,
            name: "a".into(),
            media_type: String::new()
        };
        33
    ];
    let mut short_hash = input("alert_ack", "", "{}");
    short_hash.artifacts = vec![pb::ArtifactRef {
        blake3: vec![0; 31],
        sha256: vec![0; 32],
        size: 1,
        name: "a".into(),
        media_type: String::new(),
    }];
    let cases: Vec<(pb::AppendRequest, Code, &str)> = vec![
        (req(input("Bad Category", "", "{}")), Code::InvalidArgument, "invalid category"),
        (req(input("alert_ack", "", "[1,2]")), Code::InvalidArgument, "invalid payload: must be a JSON object"),
        (req(input("alert_ack", "", "not json")), Code::InvalidArgument, "invalid payload: not valid JSON"),
        (
            req(input("decision_evaluation", "", r#"{"model":"m1","accepted":true,"accepted":false}"#)),
            Code::InvalidArgument,
            "invalid payload.accepted: duplicate member name",
        ),
        (
            req(input("alert_ack", "", r#"{"x":{"y":1,"y":2}}"#)),
            Code::InvalidArgument,
            "invalid payload.x.y: duplicate",
        ),
        (
            req(input("alert_ack", "", r#"{"n":123456789012345678901234567890}"#)),
            Code::InvalidArgument,
            "invalid payload.n: integer beyond 2^53, send it as a string",
        ),
        (req(input("alert_ack", "", &deep)), Code::InvalidArgument, "nesting depth"),
        (req(input("alert_ack", "", &big)), Code::InvalidArgument, "invalid payload"),
        (req(input("alert_ack", &"s".repeat(300), "{}")), Code::InvalidArgument, "invalid subject"),
        (
            req(pb::EntryInput { request_id: "r".repeat(200), ..input("alert_ack", "", "{}") }),
            Code::InvalidArgument,
            "invalid request_id",
        ),
        (
            req(pb::EntryInput { occurred_at: -1, ..input("alert_ack", "", "{}") }),
            Code::InvalidArgument,
            "invalid occurred_at",
        ),
        (req(many), Code::InvalidArgument, "invalid artifacts"),
        (req(short_hash), Code::InvalidArgument, "invalid artifacts[0].blake3"),
        (
            req(input("stage5_incident", "INC-1", r#"{"tco_kpi":1}"#)),
            Code::FailedPrecondition,
            "decision_path, rotation_event_id",
        ),
        (req(input("undeclared_thing", "", "{}")), Code::InvalidArgument, "not declared"),
        (pb::AppendRequest { log: "nope".into(), ..ack(1) }, Code::NotFound, "log \"nope\" is not hosted"),
        (pb::AppendRequest { log: String::new(), ..ack(1) }, Code::InvalidArgument, "invalid log"),
        (pb::AppendRequest { entry: None, ..ack(1) }, Code::InvalidArgument, "invalid entry: is missing"),
    ];
    for (i, (r, code, msg)) in cases.into_iter().enumerate() {
        let e = c.append(r).await.unwrap_err();
        assert_eq!(e.code(), code, "case {i}: {}", e.message());
        assert!(e.message().contains(msg), "case {i}: {:?} lacks {msg:?}", e.message());
    }
    assert_eq!(common::snapshot(&s.log_dir().join("journal")), before, "rejected requests leave no trace");
    assert_eq!(c.append(ack(1)).await.unwrap().into_inner().receipt.unwrap().seq, 1, "the server is still up");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_resource_exhausted_and_every_ok_is_kept() {
    let mut s = TestServer::start(|c| {
        c.queue_depth = 1;
        c.max_batch = 1;
    })
    .await;
    let ch = s.channel().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..400 {
        let mut c = pb::ledger_service_client::LedgerServiceClient::new(ch.clone());
        set.spawn(async move { c.append(ack(i)).await });
    }
    let (mut ok, mut full) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(r) => ok.push(r.into_inner().receipt.unwrap()),
            Err(e) if e.code() == Code::ResourceExhausted => {
                assert!(e.message().contains("queue"), "{}", e.message());
                full += 1
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(full > 0, "a queue of 1 under 400 concurrent appends must overflow");
    assert!(!ok.is_empty());
    let mut c = s.ledger().await;
    for r in &ok {
        let e =
            c.get(pb::GetRequest { log: "default".into(), seq: r.seq, with_proof: false }).await.unwrap().into_inner();
        assert_eq!(e.entry.unwrap().leaf_hash, r.leaf_hash);
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_stream_of_appends_loses_no_acknowledged_entry() {
    let s = TestServer::start(|_| {}).await;
    let mut c = s.ledger().await;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let feeder = tokio::spawn(async move {
        for i in 0..1_000_000u64 {
            if tx.send(ack(i)).await.is_err() {
                break;
            }
        }
    });
    let mut stream = c.append_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let mut receipts = Vec::new();
    while let Ok(Some(m)) = stream.message().await {
        if let Some(pb::append_stream_response::Result::Receipt(r)) = m.result {
            receipts.push(r);
        }
        if receipts.len() == 2000 {
            break;
        }
    }
    let stopping = tokio::spawn(s.into_dir());
    // Keep draining acknowledgements while the server stops.
    while let Ok(Some(m)) = stream.message().await {
        if let Some(pb::append_stream_response::Result::Receipt(r)) = m.result {
            receipts.push(r);
        }
    }
    let d = stopping.await.unwrap();
    feeder.abort();
    assert!(receipts.len() >= 2000);
    let (l, _) =
        ledger::store::file::open(&d.path().join("data/logs/default"), ledger::LogOptions::new("ledger.local/default"))
            .unwrap();
    for r in &receipts {
        assert_eq!(l.get(r.seq).unwrap().leaf_hash.to_vec(), r.leaf_hash, "acknowledged seq {} is kept", r.seq);
    }
    let rep = ledger::verify::verify(&ledger::verify::VerifyInput {
        journal_dir: &d.path().join("data/logs/default/journal"),
        vkeys: &l.verifiers(),
        hmac_keys: Some(&l.hmac_keys()),
        trusted_checkpoint: Some(&receipts.last().unwrap().checkpoint),
        progress: None,
        start: None,
    })
    .unwrap();
    assert!(rep.ok, "{}", rep.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_delivers_every_entry_once_in_order_while_appends_run() {
    let mut s = TestServer::start(|_| {}).await;
    let mut c = s.ledger().await;
    for i in 0..50 {
        c.append(ack(i)).await.unwrap();
    }
    let mut tail =
        c.tail(pb::TailRequest { log: "default".into(), from_seq: 10, filter: None }).await.unwrap().into_inner();
    let ch = s.channel().await;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4u64 {
        let mut c = pb::ledger_service_client::LedgerServiceClient::new(ch.clone());
        writers.spawn(async move {
            for i in 0..250 {
                c.append(ack(1000 + w * 1000 + i)).await.unwrap();
            }
        });
    }
    let mut seqs = Vec::new();
    while seqs.len() < 1040 {
        let e =
            tokio::time::timeout(std::time::Duration::from_secs(30), tail.message()).await.unwrap().unwrap().unwrap();
        seqs.push(e.seq);
    }
    while writers.join_next().await.is_some() {}
    assert_eq!(seqs, (10..1050).collect::<Vec<u64>>());
    // A filtered tail sees only its subject.
    let f = pb::Filter { subject: "INC-3".into(), ..Default::default() };
    let mut t2 =
        c.tail(pb::TailRequest { log: "default".into(), from_seq: 0, filter: Some(f) }).await.unwrap().into_inner();
    for _ in 0..5 {
        let e = t2.message().await.unwrap().unwrap();
        assert_eq!(e.decoded.unwrap().subject, "INC-3");
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_pages_resume_at_the_cursor() {
    let mut s = TestServer::start(|_| {}).await;
    let mut c = s.ledger().await;
    let reqs: Vec<_> = (0..600).map(ack).collect();
    let mut st = c.append_stream(tokio_stream::iter(reqs)).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(m) = st.message().await.unwrap() {
        let Some(pb::append_stream_response::Result::Receipt(r)) = m.result else { panic!("{m:?}") };
        assert_eq!(m.index, n);
        // the writer threads take turns but begin batches in queue order
        assert_eq!(r.seq, n, "a stream's entries are sequenced in the order sent");
        n += 1;
    }
    assert_eq!(n, 600);
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let q = pb::QueryRequest {
            log: "default".into(),
            filter: Some(pb::Filter { subject: "INC-2".into(), ..Default::default() }),
            limit: 7,
            cursor,
            ..Default::default()
        };
        let mut st = c.query(q).await.unwrap().into_inner();
        cursor = None;
        while let Some(m) = st.message().await.unwrap() {
            match m.item.unwrap() {
                pb::query_response::Item::Entry(e) => seen.push(e.seq),
                pb::query_response::Item::NextCursor(cur) => cursor = Some(cur),
            }
        }
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, (0..600).filter(|i| i % 5 == 2).collect::<Vec<u64>>());
    let q = pb::QueryRequest { log: "default".into(), limit: 20_000, ..Default::default() };
    assert_eq!(c.query(q).await.unwrap_err().code(), Code::InvalidArgument);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_and_checkpoints_over_grpc() {
    let mut s = TestServer::start(|c| c.checkpoint_interval = 10).await;
    let mut c = s.ledger().await;
    for i in 0..40 {
        c.append(ack(i)).await.unwrap();
    }
    let cp = c.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 0 }).await.unwrap().into_inner();
    assert_eq!(cp.size, 40);
    assert_eq!(cp.origin, "ledger.local/default");
    let old =
        c.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 10 }).await.unwrap().into_inner();
    let vk = common::vkeys(&s).await;
    ledger::note::Checkpoint::open(&old.note, &vk).unwrap();
    let p = c
        .prove_consistency(pb::ProveConsistencyRequest { log: "default".into(), old_size: 10, new_size: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.old_root, old.root);
    let proof: Vec<[u8; 32]> = p.proof.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
    ledger::merkle::verify_consistency(
        10,
        40,
        &old.root.try_into().unwrap(),
        &cp.root.clone().try_into().unwrap(),
        &proof,
    )
    .unwrap();
    let ip = c
        .prove_inclusion(pb::ProveInclusionRequest { log: "default".into(), seq: 7, tree_size: 20 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ip.tree_size, 20);
    // At an older size: the leaf hash (from the index) is entry 7's, and the
    // proof verifies against the root of the first 20 entries.
    let got = c.get(pb::GetRequest { log: "default".into(), seq: 7, with_proof: false }).await.unwrap().into_inner();
    assert_eq!(ip.leaf_hash, got.entry.unwrap().leaf_hash);
    let root20 = c
        .prove_consistency(pb::ProveConsistencyRequest { log: "default".into(), old_size: 20, new_size: 0 })
        .await
        .unwrap()
        .into_inner()
        .old_root;
    let proof: Vec<[u8; 32]> = ip.proof.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
    let leaf: [u8; 32] = ip.leaf_hash.as_slice().try_into().unwrap();
    ledger::merkle::verify_inclusion(7, 20, &leaf, &proof, &root20.try_into().unwrap()).unwrap();
    // "Latest" (tree_size 0): the response names the checkpoint it used,
    // which covers seq, and the proof, raw and as tlog-proof, verifies in it.
    for seq in [7, 39] {
        let ip = c
            .prove_inclusion(pb::ProveInclusionRequest { log: "default".into(), seq, tree_size: 0 })
            .await
            .unwrap()
            .into_inner();
        let signed = ledger::note::Checkpoint::open(&ip.checkpoint, &vk).unwrap();
        assert!(ip.tree_size > seq && ip.tree_size <= 40 && signed.size == ip.tree_size, "{ip:?}");
        let proof: Vec<[u8; 32]> = ip.proof.iter().map(|h| h.as_slice().try_into().unwrap()).collect();
        let leaf: [u8; 32] = ip.leaf_hash.as_slice().try_into().unwrap();
        ledger::merkle::verify_inclusion(seq, ip.tree_size, &leaf, &proof, &signed.root).unwrap();
        let v = ledger::receipt::TlogProof::parse(&ip.tlog_proof).unwrap().verify(&vk, Some(&leaf)).unwrap();
        assert_eq!(v.checkpoint.size, ip.tree_size);
    }
    let e = c
        .prove_inclusion(pb::ProveInclusionRequest { log: "default".into(), seq: 7, tree_size: 41 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange);
    let e = c.get_checkpoint(pb::GetCheckpointRequest { log: "default".into(), size: 13 }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c.get(pb::GetRequest { log: "default".into(), seq: 40, with_proof: false }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_round_trip_and_an_altered_blob_is_refused() {
    let mut s = TestServer::start(|_| {}).await;
    let mut a = s.artifacts().await;
    let content: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let header = pb::UploadHeader {
        log: "default".into(),
        name: "slides.pdf".into(),
        media_type: "application/pdf".into(),
        subject: "INC-7".into(),
        ..Default::default()
    };
    let mut msgs = vec![pb::UploadRequest { item: Some(pb::upload_request::Item::Header(header)) }];
    for ch in content.chunks(100_000) {
        msgs.push(pb::UploadRequest { item: Some(pb::upload_request::Item::Chunk(ch.to_vec())) });
    }
    let up = a.upload(tokio_stream::iter(msgs)).await.unwrap().into_inner();
    assert_eq!(up.blake3, blake3::hash(&content).as_bytes().to_vec());
    assert_eq!(up.size, content.len() as u64);
    let leaf = ledger::leaf::decode_leaf(&up.receipt.unwrap().leaf).unwrap();
    assert_eq!((leaf.category.as_str(), leaf.subject.as_str()), ("artifact", "INC-7"));
    let download = |a: &mut pb::artifact_service_client::ArtifactServiceClient<_>| {
        let r = pb::DownloadRequest { log: "default".into(), blake3: up.blake3.clone() };
        let mut a = a.clone();
        async move {
            let mut st = a.download(r).await?.into_inner();
            let mut got = Vec::new();
            while let Some(c) = st.message().await? {
                got.extend(c.data);
            }
            Ok::<_, tonic::Status>(got)
        }
    };
    assert_eq!(download(&mut a).await.unwrap(), content);
    let stat = a.stat(pb::StatRequest { log: "default".into(), blake3: up.blake3.clone() }).await.unwrap().into_inner();
    assert!(stat.registered && stat.present && stat.intact);
    assert_eq!(stat.seq, 0);
    let hex = hex::encode(&up.blake3);
    let blob = s.log_dir().join("artifacts").join(&hex[..2]).join(&hex);
    let mut b = std::fs::read(&blob).unwrap();
    b[1000] ^= 1;
    std::fs::write(&blob, b).unwrap();
    let e = download(&mut a).await.unwrap_err();
    assert_eq!(e.code(), Code::DataLoss);
    assert!(e.message().contains("altered"), "{}", e.message());
    let stat = a.stat(pb::StatRequest { log: "default".into(), blake3: up.blake3.clone() }).await.unwrap().into_inner();
    assert!(stat.present && !stat.intact);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let mut s = TestServer::start(|_| {}).await;
    s.ledger().await;
    let c = common::config(&s.data());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = ledger_server::serve_with_metrics(c, l, None, std::future::pending());
    let second = tokio::time::timeout(std::time::Duration::from_secs(30), second).await;
    let err = second.expect("the second server must fail at once, not serve").unwrap_err().to_string();
    assert!(err.contains("in use by another ledgerd") && err.contains("LOCK"), "{err}");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_status_rotate_and_public_keys() {
    let mut s = TestServer::start(|_| {}).await;
    let mut k = s.keys().await;
    let st = k.status(pb::KeyStatusRequest { log: "default".into() }).await.unwrap().into_inner();
    assert_eq!(st.keys.len(), 2);
    assert!(st.keys.iter().all(|k| k.verdict == "ok" && k.state == "active"));
    let e = k
        .rotate(pb::RotateRequest { log: "default".into(), reason: " ".into(), actor: "admin".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let r = k
        .rotate(pb::RotateRequest { log: "default".into(), reason: "monthly".into(), actor: "admin".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.retired.len(), 2);
    let leaf = ledger::leaf::decode_leaf(&r.receipt.unwrap().leaf).unwrap();
    assert_eq!((leaf.category.as_str(), leaf.actor.as_str()), ("key_rotation", "admin"));
    let pk = k.public_keys(pb::PublicKeysRequest { log: "default".into() }).await.unwrap().into_inner();
    assert_eq!(pk.keys.len(), 4);
    assert!(pk.keys.iter().any(|k| k.vkey == r.new_vkey && k.state == "active"));
    assert!(!format!("{pk:?}").to_lowercase().contains("secret"));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_metrics() {
    let mut s = TestServer::start(|_| {}).await;
    let ch = s.channel().await;
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let r = h
        .check(tonic_health::pb::HealthCheckRequest { service: "ledger.v1.LedgerService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    use tonic_reflection::pb::v1alpha as ra;
    let mut rc = ra::server_reflection_client::ServerReflectionClient::new(ch.clone());
    let req = ra::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(ra::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut st = rc.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let resp = st.message().await.unwrap().unwrap();
    let Some(ra::server_reflection_response::MessageResponse::ListServicesResponse(l)) = resp.message_response else {
        panic!("{resp:?}")
    };
    let names: Vec<_> = l.service.iter().map(|s| s.name.clone()).collect();
    for want in
        ["ledger.v1.LedgerService", "ledger.v1.ArtifactService", "ledger.v1.KeyService", "grpc.health.v1.Health"]
    {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    s.ledger().await.append(ack(1)).await.unwrap();
    let body = common::http_get(s.metrics, "/metrics").await;
    for name in ledger_server::metrics::NAMES {
        if ledger_server::metrics::COUNTED_ON_EVENT.contains(name) || ledger_server::metrics::REPLICATED.contains(name)
        {
            continue;
        }
        assert!(body.contains(name), "{name} missing from /metrics");
    }
    assert!(body.contains(r#"ledger_appends_total{category="alert_ack",log="default",outcome="ok"} 1"#), "{body}");
    assert!(body.contains(r#"ledger_tree_size{log="default"} 1"#));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_at_rest_is_data_loss_and_counted() {
    let s = TestServer::start(|c| c.segment_bytes = 4096).await;
    let mut c = s.ledger().await;
    for i in 0..100 {
        c.append(ack(i)).await.unwrap();
    }
    let journal = s.log_dir().join("journal");
    let dir = s.into_dir().await;
    let segs = ledger::journal::list_segments(&journal).unwrap();
    let (first, sealed) = &segs[1];
    let mut b = std::fs::read(sealed).unwrap();
    b[300] ^= 0x10;
    std::fs::write(sealed, &b).unwrap();
    let mut s = TestServer::start_in(dir, |c| c.segment_bytes = 4096).await;
    let mut c = s.ledger().await;
    let mut lost = 0;
    for seq in *first..*first + 10 {
        if let Err(e) = c.get(pb::GetRequest { log: "default".into(), seq, with_proof: false }).await {
            assert_eq!(e.code(), Code::DataLoss, "{}", e.message());
            assert!(e.message().contains("CRC mismatch"), "{}", e.message());
            lost += 1;
        }
    }
    assert_eq!(lost, 1, "exactly the damaged frame");
    let body = common::http_get(s.metrics, "/metrics").await;
    assert!(body.contains(r#"ledger_verify_failures_total{log="default"} 1"#), "{body}");
    assert!(c.append(ack(1000)).await.is_ok(), "appends go on (the damage is in a sealed segment)");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_to_every_service_name_the_field_and_change_nothing() {
    let mut s = TestServer::start(|_| {}).await;
    let mut c = s.ledger().await;
    let mut a = s.artifacts().await;
    let mut k = s.keys().await;
    for i in 0..5 {
        c.append(ack(i)).await.unwrap();
    }
    let before = common::snapshot(&s.log_dir().join("journal"));
    let log = || "default".to_string();
    let mut results: Vec<(Result<(), tonic::Status>, Code, &str)> = Vec::new();
    let mut push = |r: Result<(), tonic::Status>, code, msg| results.push((r, code, msg));
    let bad_name = pb::ArtifactRef {
        blake3: vec![0; 32],
        sha256: vec![0; 32],
        size: 1,
        name: "../etc/passwd".into(),
        media_type: String::new(),
    };
    let long_media = pb::ArtifactRef { media_type: "m".repeat(200), name: "a.pdf".into(), ..bad_name.clone() };
    let short_sha = pb::ArtifactRef { sha256: vec![1; 16], name: "a.pdf".into(), ..bad_name.clone() };
    for (art, code, msg) in [
        (bad_name, Code::InvalidArgument, "invalid artifacts[0].name"),
        (long_media, Code::InvalidArgument, "invalid artifacts[0].media_type"),
        (short_sha, Code::InvalidArgument, "invalid artifacts[0].sha256: must be 32 bytes, got 16"),
    ] {
        let e = pb::EntryInput { artifacts: vec![art], ..input("alert_ack", "", "{}") };
        push(c.append(req(e)).await.map(|_| ()), code, msg);
    }
    push(
        c.append(req(input("", "", "{}"))).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid category: must be 1 to 64",
    );
    push(
        c.append(req(input(&"c".repeat(65), "", "{}"))).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid category: must be 1 to 64",
    );
    push(
        c.append(req(pb::EntryInput { payload: vec![0xff, 0x00], ..input("alert_ack", "", "") })).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid payload: not UTF-8",
    );
    push(
        c.append(req(input("alert_ack", "", "null"))).await.map(|_| ()),
        Code::InvalidArgument,
        "must be a JSON object, got null",
    );
    push(
        c.append(req(input("alert_ack", "", ""))).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid payload: not valid JSON",
    );
    push(
        c.append(req(input("alert_ack", "bad\u{7}subject", "{}"))).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid subject: contains control character U+0007",
    );
    push(
        c.append(req(pb::EntryInput { request_id: "has space".into(), ..input("alert_ack", "", "{}") }))
            .await
            .map(|_| ()),
        Code::InvalidArgument,
        "invalid request_id",
    );
    push(
        c.append(req(input("override", "", r#"{"component":"x"}"#))).await.map(|_| ()),
        Code::FailedPrecondition,
        "reason",
    );
    push(
        c.get(pb::GetRequest { log: log(), seq: 99, with_proof: false }).await.map(|_| ()),
        Code::NotFound,
        "entry 99 does not exist: the log has 5 entries",
    );
    push(
        c.get(pb::GetRequest { log: "x/y".into(), seq: 0, with_proof: false }).await.map(|_| ()),
        Code::NotFound,
        "log \"x/y\" is not hosted here (hosted: default)",
    );
    push(
        c.prove_inclusion(pb::ProveInclusionRequest { log: log(), seq: 9, tree_size: 5 }).await.map(|_| ()),
        Code::NotFound,
        "entry 9 does not exist: the log has 5 entries",
    );
    push(
        c.prove_inclusion(pb::ProveInclusionRequest { log: log(), seq: 0, tree_size: 6 }).await.map(|_| ()),
        Code::OutOfRange,
        "tree size 6 is larger than the log",
    );
    push(
        c.prove_consistency(pb::ProveConsistencyRequest { log: log(), old_size: 4, new_size: 2 }).await.map(|_| ()),
        Code::InvalidArgument,
        "old size 4 is larger than new size 2",
    );
    push(
        c.get_checkpoint(pb::GetCheckpointRequest { log: log(), size: 3 }).await.map(|_| ()),
        Code::NotFound,
        "no checkpoint of size 3 is kept",
    );
    let bad_filter = pb::Filter {
        fields: vec![pb::FieldEquals { key: "k".into(), json_value: "{nope".into() }],
        ..Default::default()
    };
    push(
        c.query(pb::QueryRequest { log: log(), filter: Some(bad_filter.clone()), ..Default::default() })
            .await
            .map(|_| ()),
        Code::InvalidArgument,
        "invalid filter.fields[0].json_value",
    );
    push(
        c.tail(pb::TailRequest { log: log(), from_seq: 0, filter: Some(bad_filter) }).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid filter.fields[0].json_value",
    );
    push(
        a.download(pb::DownloadRequest { log: log(), blake3: vec![1; 31] }).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid blake3: must be 32 bytes, got 31",
    );
    push(
        a.download(pb::DownloadRequest { log: log(), blake3: vec![1; 32] }).await.map(|_| ()),
        Code::NotFound,
        "is not stored",
    );
    push(
        a.stat(pb::StatRequest { log: log(), blake3: vec![] }).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid blake3",
    );
    let chunk_first = vec![pb::UploadRequest { item: Some(pb::upload_request::Item::Chunk(b"x".to_vec())) }];
    push(
        a.upload(tokio_stream::iter(chunk_first)).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid header: the first message must be the upload header",
    );
    let bad_header = pb::UploadHeader { log: log(), name: "a/b.pdf".into(), ..Default::default() };
    let msgs = vec![pb::UploadRequest { item: Some(pb::upload_request::Item::Header(bad_header)) }];
    push(a.upload(tokio_stream::iter(msgs)).await.map(|_| ()), Code::InvalidArgument, "invalid header.name");
    // ledgerd's own request ids (a redaction, a dual-control approval) are not a client's to take
    let taken =
        pb::UploadHeader { log: log(), name: "a.pdf".into(), request_id: "redaction/7".into(), ..Default::default() };
    let msgs = vec![
        pb::UploadRequest { item: Some(pb::upload_request::Item::Header(taken)) },
        pb::UploadRequest { item: Some(pb::upload_request::Item::Chunk(b"x".to_vec())) },
    ];
    push(a.upload(tokio_stream::iter(msgs)).await.map(|_| ()), Code::InvalidArgument, "invalid request_id");
    push(
        k.rotate(pb::RotateRequest { log: log(), reason: String::new(), actor: "admin".into() }).await.map(|_| ()),
        Code::InvalidArgument,
        "invalid reason",
    );
    push(
        k.status(pb::KeyStatusRequest { log: "nope".into() }).await.map(|_| ()),
        Code::NotFound,
        "log \"nope\" is not hosted",
    );
    assert!(results.len() >= 25, "{} cases", results.len());
    for (i, (r, code, msg)) in results.into_iter().enumerate() {
        let e = r.expect_err("must be refused");
        assert_eq!(e.code(), code, "case {i}: {}", e.message());
        assert!(e.message().contains(msg), "case {i}: {:?} lacks {msg:?}", e.message());
    }
    assert_eq!(common::snapshot(&s.log_dir().join("journal")), before, "nothing was written");
    let blobs = s.log_dir().join("artifacts");
    assert!(
        !blobs.exists() || common::snapshot(&blobs).iter().all(|(p, _)| p.to_string_lossy().contains("/tmp/")),
        "no artifact was stored"
    );
    s.stop().await.unwrap();
}

/// A client that opens a connection and never speaks (a port scanner, a
/// stuck proxy) does not keep ledgerd from stopping: open connections get a
/// grace period, then are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_does_not_block_shutdown() {
    let mut s = TestServer::start(|_| {}).await;
    s.ledger().await;
    let _idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(30), s.stop())
        .await
        .expect("ledgerd stopped within 30 s although a connection stayed open")
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "the connection got its grace period");
}
