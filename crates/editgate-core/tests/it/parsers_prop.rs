//! Property tests of the parsers: arbitrary input never panics, and what a parser accepts
//! round-trips.

use editgate_core::attempt::parse_ip;
use editgate_core::policy::{PolicyFile, check};
use editgate_core::sources::SourceKind;
use editgate_core::sources::maxmind::MaxmindDb;
use editgate_core::sources::{iplist, tor};
use ipnet::IpNet;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = tor::parse_bytes(&bytes);
        let _ = iplist::parse_bytes(&bytes, false);
        let _ = iplist::parse_bytes(&bytes, true);
        let _ = MaxmindDb::open(bytes.clone(), SourceKind::MaxmindAnonymous);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = parse_ip("ip", &text);
        let _ = check(&[PolicyFile { path: "global.toml".into(), text }], jiff::Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn policy_checker_never_panics_on_toml_like_text(
        lines in prop::collection::vec(prop_oneof![
            Just("[[rule]]".to_owned()),
            Just("[sources.x]".to_owned()),
            Just("[settings]".to_owned()),
            "[a-z_.]{1,12} = \"[a-z0-9:./ -]{0,16}\"",
            "[a-z_.]{1,12} = \\[\"[a-z0-9:./-]{0,12}\"\\]",
            // Non-ASCII values, where byte offsets and character boundaries differ.
            "[a-z_.]{1,12} = \"[a-zé€𝄞:/ -]{0,16}\"",
            "(url|path|id|message|appeal|default|kind) = \"\\PC{0,16}\"",
            "(when|unless)\\.(ip|ip_in|wikis|actions|groups|country) = \\[\"\\PC{0,12}\"\\]",
            "[a-z_.]{1,12} = [0-9]{1,4}",
        ], 0..20)
    ) {
        let text = lines.join("\n");
        let _ = check(&[PolicyFile { path: "global.toml".into(), text }], jiff::Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn ip_lists_round_trip(nets in prop::collection::vec(
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpNet::new(std::net::Ipv4Addr::from(a).into(), l).unwrap().trunc()),
            (any::<u128>(), 0u8..=128).prop_map(|(a, l)| IpNet::new(std::net::Ipv6Addr::from(a).into(), l).unwrap().trunc()),
        ], 0..50)
    ) {
        // Mapped IPv6 networks are read as IPv4 by design; keep them out of the round trip.
        let nets: Vec<IpNet> = nets.into_iter().filter(|n| match n {
            IpNet::V6(v6) => v6.network().to_ipv4_mapped().is_none(),
            IpNet::V4(_) => true,
        }).collect();
        let text: String = nets.iter().map(|n| format!("{n} # comment\n\n")).collect();
        prop_assert_eq!(iplist::parse_bytes(text.as_bytes(), false).unwrap(), nets);
    }

    #[test]
    fn bulk_tor_lists_round_trip(ips in prop::collection::btree_set(any::<u32>(), 0..50)) {
        let ips: Vec<std::net::IpAddr> = ips.into_iter().map(|a| std::net::Ipv4Addr::from(a).into()).collect();
        let text: String = ips.iter().map(|ip| format!("{ip}\n")).collect();
        let (_, parsed) = tor::parse_bytes(text.as_bytes()).unwrap();
        prop_assert_eq!(parsed, ips);
    }
}

/// A TOML string literal holding `s`, escaped as TOML requires.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every string value of a source and a rule, arbitrary Unicode included (byte offsets
    /// inside multi-byte characters once made `validate` panic on a `url`).
    #[test]
    fn any_text_in_any_string_value_never_panics(
        kind in prop_oneof![Just("ip-list".to_owned()), Just("tor-exits".to_owned()), "\\PC{0,12}"],
        url in prop_oneof!["\\PC{0,20}", "https?:/{0,2}\\PC{0,12}"],
        path in "\\PC{0,12}",
        duration in "\\PC{0,8}",
        id in "\\PC{0,12}",
        net in "\\PC{0,20}",
        word in "\\PC{0,12}",
    ) {
        let text = format!(
            "[sources.s]\nkind = {}\nurl = {}\npath = {}\nrefresh = {}\nmax_age = {}\n\n\
             [[rule]]\nid = {}\nverdict = {}\nmessage = {}\nwhen.ip = [{}]\nwhen.ip_in = [{}]\n\
             when.wikis = [{}]\nwhen.country = [{}]\nwhen.min_age = {}\n",
            toml_str(&kind), toml_str(&url), toml_str(&path), toml_str(&duration), toml_str(&duration),
            toml_str(&id), toml_str(&word), toml_str(&word), toml_str(&net), toml_str(&word),
            toml_str(&word), toml_str(&word), toml_str(&duration),
        );
        let files = [PolicyFile { path: "global.toml".into(), text }];
        let _ = check(&files, jiff::Timestamp::UNIX_EPOCH);
    }
}
