//! Fuzz target `maxmind_open`: the property is [`editgate_testkit::fuzzing::maxmind_open`], shared with the
//! regression test that replays `fuzz/seeds` and `fuzz/regressions`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| editgate_testkit::fuzzing::maxmind_open(data));
