//! Fuzz target `request_json`: the property is [`editgate::fuzzing::request_json`], shared with
//! the regression test that replays `fuzz/seeds` and `fuzz/regressions`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| editgate::fuzzing::request_json(data));
