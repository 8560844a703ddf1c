//! Fuzz target `tor_list`: the property is [`editgate_testkit::fuzzing::tor_list`], shared with the
//! regression test that replays `fuzz/seeds` and `fuzz/regressions`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| editgate_testkit::fuzzing::tor_list(data));
