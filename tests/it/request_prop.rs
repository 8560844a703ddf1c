//! Requests with any text in their fields, through the HTTP/JSON parser and the one attempt
//! constructor: never a panic, and what is accepted is normalized.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Requests with any text in their strings (wiki ids that only look like a
    /// wiki's, actions, names, timestamps): never a panic, and what is accepted is normalized.
    #[test]
    fn any_json_request_is_refused_naming_a_field_or_normalized(
        ip in prop_oneof!["\\PC{0,16}", "(9\\.9\\.9\\.9|::ffff:192\\.0\\.2\\.1|2001:db8::1)"],
        wiki in prop_oneof!["\\PC{0,12}", "[a-zA-Z0-9_ -]{0,12}"],
        action in prop_oneof!["\\PC{0,10}", "[a-zA-Z -]{0,10}"],
        kind in prop_oneof![Just("ACCOUNT_KIND_ANONYMOUS"), Just("ACCOUNT_KIND_REGISTERED"), Just("ACCOUNT_KIND_TEMPORARY"), Just("X")],
        group in "\\PC{0,300}",
        seconds in any::<i64>(),
        edits in any::<u64>(),
    ) {
        let registered = jiff::Timestamp::from_second(seconds.rem_euclid(253_402_000_000)).unwrap();
        let json = serde_json::json!({
            "ip": ip, "wiki": wiki, "action": action,
            "account": {"kind": kind, "groups": [group], "editCount": edits.to_string(), "registeredAt": registered.to_string()},
        })
        .to_string();
        crate::fuzz_regressions::request_json(json.as_bytes());
    }
}
