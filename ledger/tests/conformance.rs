//! The conformance suite (`suite/mod.rs`) over the file store and the
//! memory store.

mod engines;
#[macro_use]
mod suite;

conformance!(
    file_store,
    crate::engines::FileEngine::new(),
    [
        appends_and_reads,
        idempotency_across_reopen,
        readable_through,
        scans_and_paging,
        export_verifies,
        redaction,
        a_failed_sync_acknowledges_nothing,
        a_failed_sync_fails_every_batch_it_would_have_covered,
        crash_at_write,
        crash_before_sync,
        crash_after_sync,
        crash_at_durable_point,
        crash_at_replace_record,
        crash_at_close,
        blobs_round_trip,
        a_second_writer_is_locked_out,
    ]
);

conformance!(
    memory_store,
    crate::engines::MemoryEngine::new(),
    [
        appends_and_reads,
        idempotency_across_reopen,
        readable_through,
        scans_and_paging,
        export_verifies,
        redaction,
        a_failed_sync_acknowledges_nothing,
        a_failed_sync_fails_every_batch_it_would_have_covered,
        crash_at_write,
        crash_before_sync,
        crash_after_sync,
        crash_at_durable_point,
        crash_at_replace_record,
        crash_at_close,
        blobs_round_trip,
        a_second_writer_is_locked_out,
    ]
);
