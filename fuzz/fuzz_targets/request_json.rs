//! Fuzz target `request_json`: the property is [`editgate_testkit::fuzzing::request_json`] with
//! the service's own JSON request parser; `cargo test` replays `fuzz/seeds` and
//! `fuzz/regressions` the same way (`tests/it/fuzz_regressions.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let now = jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(500_000);
    editgate_testkit::fuzzing::request_json(data, |text| {
        editgate::proto::json_attempt(text, now, Default::default())
    });
});
