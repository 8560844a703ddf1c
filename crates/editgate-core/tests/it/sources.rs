//! The source parsers on real files.

use std::collections::BTreeSet;
use std::net::IpAddr;

use editgate_core::sources::SourceKind;
use editgate_core::sources::iplist::{self, parse_net};
use editgate_core::sources::maxmind::{AnonFlag, MaxmindDb};
use editgate_core::sources::tor::{self, TorFormat};
use ipnet::IpNet;

use crate::common::fixture;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).expect("fixture")
}

#[test]
fn tordnsel_2018_list_has_859_distinct_exits() {
    let bytes = read("tor/exit-addresses-2018-10-11.txt");
    let (format, ips) = tor::parse_bytes(&bytes).unwrap();
    assert_eq!(format, TorFormat::TorDnsel);
    assert_eq!(ips.len(), 859);
    let exit_lines = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("ExitAddress"))
        .count();
    assert_eq!(exit_lines, 923, "the fixture itself");
    assert!(ips.contains(&"162.247.74.201".parse().unwrap()));
}

#[test]
fn tordnsel_with_header_parses_the_same() {
    let body = String::from_utf8(read("tor/exit-addresses-2018-10-11.txt")).unwrap();
    let with_header = format!("@type tordnsel 1.0\nDownloaded 2018-10-11 12:10:00\n{body}");
    let (format, ips) = tor::parse_bytes(with_header.as_bytes()).unwrap();
    assert_eq!(format, TorFormat::TorDnsel);
    assert_eq!(ips.len(), 859);
}

#[test]
fn bulk_list_made_from_the_same_exits_matches() {
    let (_, ips) = tor::parse_bytes(&read("tor/exit-addresses-2018-10-11.txt")).unwrap();
    let bulk: String = ips.iter().map(|ip| format!("{ip}\n")).collect();
    let (format, again) = tor::parse_bytes(bulk.as_bytes()).unwrap();
    assert_eq!(format, TorFormat::Bulk);
    assert_eq!(again, ips);
}

#[test]
fn onionoo_sample_has_only_one_exit() {
    let (format, ips) = tor::parse_bytes(&read("tor/onionoo-details-2021-10-09.json")).unwrap();
    assert_eq!(format, TorFormat::Onionoo);
    assert_eq!(ips, vec!["128.31.0.13".parse::<IpAddr>().unwrap()]);
}

#[test]
fn x4bnet_lists_load_completely() {
    for (rel, want) in [
        ("iplists/x4bnet-vpn-ipv4.txt", 10_862),
        ("iplists/x4bnet-vpn-ipv6.txt", 498),
        ("iplists/x4bnet-datacenter-ipv4.txt", 42_566),
        ("iplists/x4bnet-datacenter-ipv6.txt", 8_752),
    ] {
        let bytes = read(rel);
        let nets = iplist::parse_bytes(&bytes, false).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(nets.len(), want, "{rel}");
        let lines = String::from_utf8(bytes).unwrap();
        let first: IpNet = lines.lines().next().unwrap().trim().parse().unwrap();
        assert_eq!(nets[0], first.trunc(), "{rel}");
    }
}

/// The expected flags/ASN for `ip` per a `*.source.json`: the most specific network wins.
fn expected_record(source: &[(IpNet, serde_json::Value)], ip: IpAddr) -> Option<&serde_json::Value> {
    source
        .iter()
        .filter(|(n, _)| n.contains(&ip))
        .max_by_key(|(n, _)| n.prefix_len())
        .map(|(_, v)| v)
}

fn load_source_json(rel: &str) -> Vec<(IpNet, serde_json::Value)> {
    let doc: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(&read(rel)).unwrap();
    doc.into_iter()
        .flat_map(|m| m.into_iter())
        .map(|(k, v)| (parse_net(&k).unwrap_or_else(|e| panic!("net {k}: {e:?}")), v))
        .collect()
}

#[test]
fn maxmind_anonymous_flags_match_their_source_json() {
    for name in ["GeoIP2-Anonymous-IP-Test", "GeoIP-Anonymous-Plus-Test"] {
        let db = MaxmindDb::open(read(&format!("maxmind/{name}.mmdb")), SourceKind::MaxmindAnonymous).unwrap();
        let source = load_source_json(&format!("maxmind/{name}.source.json"));
        assert!(source.len() >= 10, "{name}");
        for (net, _) in &source {
            for ip in [net.network(), net.broadcast()] {
                let want = expected_record(&source, ip).unwrap();
                let want_mask = AnonFlag::ALL
                    .into_iter()
                    .filter(|f| want.get(f.as_str()) == Some(&serde_json::Value::Bool(true)))
                    .fold(0, |m, f| m | f.bit());
                assert_eq!(db.anon_flags(ip), want_mask, "{name} {ip}");
            }
        }
        assert_eq!(db.anon_flags("9.9.9.9".parse().unwrap()), 0);
    }
}

#[test]
fn maxmind_asn_matches_its_source_json() {
    let db = MaxmindDb::open(read("maxmind/GeoLite2-ASN-Test.mmdb"), SourceKind::MaxmindAsn).unwrap();
    let source = load_source_json("maxmind/GeoLite2-ASN-Test.source.json");
    for (net, _) in source.iter().take(200) {
        let ip = net.network();
        let want = expected_record(&source, ip).unwrap();
        let got = db.asn(ip).map(|(n, _)| u64::from(n));
        assert_eq!(got, want["autonomous_system_number"].as_u64(), "{ip}");
    }
    assert_eq!(
        db.asn("1.0.0.1".parse().unwrap()),
        Some((15169, Some("Google Inc.".to_owned())))
    );
}

#[test]
fn maxmind_country_reads_iso_codes() {
    for name in ["GeoLite2-Country-Test", "GeoIP2-Country-Test", "GeoIP2-City-Test"] {
        let db = MaxmindDb::open(read(&format!("maxmind/{name}.mmdb")), SourceKind::MaxmindCountry).unwrap();
        // 81.2.69.160 is GB and 2.125.160.216 is GB in MaxMind's test data.
        assert_eq!(db.country("81.2.69.160".parse().unwrap()), Some(*b"GB"), "{name}");
    }
    let source = load_source_json("maxmind/GeoLite2-Country-Test.source.json");
    let db = MaxmindDb::open(read("maxmind/GeoLite2-Country-Test.mmdb"), SourceKind::MaxmindCountry).unwrap();
    let mut checked = 0;
    for (net, _) in &source {
        let want = expected_record(&source, net.network()).unwrap();
        if let Some(code) = want.pointer("/country/iso_code").and_then(|c| c.as_str()) {
            assert_eq!(
                db.country(net.network())
                    .map(|c| String::from_utf8(c.to_vec()).unwrap())
                    .as_deref(),
                Some(code),
                "{net}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10);
}

#[test]
fn broken_maxmind_databases_are_rejected_clearly() {
    let dir = fixture("maxmind/broken");
    let mut names: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let kind = if name.contains("City") {
            SourceKind::MaxmindCountry
        } else {
            SourceKind::MaxmindAnonymous
        };
        let err = MaxmindDb::open(std::fs::read(&path).unwrap(), kind).expect_err(&name);
        assert!(
            err.message.contains("MaxMind database") || err.message.contains("does not fit"),
            "{name}: {}",
            err.message
        );
        names.insert(name);
    }
    assert_eq!(names.len(), 4);
}

#[test]
fn wrong_database_type_for_the_kind_is_an_error() {
    let err = MaxmindDb::open(read("maxmind/GeoLite2-ASN-Test.mmdb"), SourceKind::MaxmindCountry).unwrap_err();
    assert!(err.message.contains("`GeoLite2-ASN`"), "{}", err.message);
}

#[test]
fn arbitrary_bytes_are_not_a_database() {
    for bytes in [
        Vec::new(),
        b"hello".to_vec(),
        vec![0xab; 4096],
        read("tor/exit-addresses-2018-10-11.txt"),
    ] {
        assert!(MaxmindDb::open(bytes, SourceKind::MaxmindAsn).is_err());
    }
}
