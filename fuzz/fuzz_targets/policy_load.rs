//! Fuzz target `policy_load`: the property is [`editgate_testkit::fuzzing::policy_load`], shared with the
//! regression test that replays `fuzz/seeds` and `fuzz/regressions`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| editgate_testkit::fuzzing::policy_load(data));
