//! The properties the fuzz targets under `fuzz/` check, one function per target.
//!
//! They live in the library so that the regression test (`tests/it/fuzz_regressions.rs`) runs
//! every committed seed and every past crash through exactly the code the fuzzers run. Each
//! function takes arbitrary bytes, must never panic on any of them, and asserts what must hold
//! for the inputs that parse.

use std::net::IpAddr;

use jiff::Timestamp;

use editgate_core::attempt::{AccountKind, Attempt, FieldError, is_action, is_wiki_id, parse_ip};
use editgate_core::engine::{Snapshot, decide};
use editgate_core::policy::{PolicyFile, check};
use editgate_core::sources::maxmind::MaxmindDb;
use editgate_core::sources::{SourceKind, iplist, tor};

/// A property over arbitrary bytes.
pub type Property = fn(&[u8]);

/// The fuzz targets, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [(&str, Property); 5] = [
    ("policy_load", policy_load),
    ("tor_list", tor_list),
    ("ip_list", ip_list),
    ("ip_normalize", ip_normalize),
    ("maxmind_open", maxmind_open),
];

/// Fuzz targets whose property needs the service's wire parser, passed in by the caller (the
/// `request_json` target and its replay in `cargo test`, both in the `editgate` package's
/// tooling): this crate sits below the service.
pub const SERVICE_TARGETS: [&str; 1] = ["request_json"];

/// An HTTP/JSON `CheckRequest` (also what `replay` reads), through the one `Attempt`
/// constructor: whatever `parse` accepts has a plain wiki id and action, an anonymous attempt
/// carries no account facts, and its account kind is the one the JSON names; whatever it
/// refuses names a field. A number out of its field's range (an account kind the `.proto` does
/// not define, a negative or fractional edit count) is always refused, never wrapped.
pub fn request_json(data: &[u8], parse: impl FnOnce(&[u8]) -> Result<Attempt, FieldError>) {
    let json: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    let account = json.as_ref().and_then(|j| j.get("account"));
    let kind = account.and_then(|a| a.get("kind"));
    let count = account.and_then(|a| a.get("editCount").or_else(|| a.get("edit_count")));
    let out_of_range = kind.is_some_and(|k| k.is_number() && !matches!(k.as_u64(), Some(1..=3)))
        || count.is_some_and(|c| c.is_number() && c.as_u64().is_none());
    match parse(data) {
        Ok(a) => {
            assert!(!out_of_range, "an out-of-range number was accepted: {a:?}");
            assert!(a.wiki().is_empty() || is_wiki_id(a.wiki()), "{a:?}");
            assert!(is_action(a.action()), "{a:?}");
            if a.account().kind == AccountKind::Anonymous {
                assert_eq!((a.account().registered_at, a.account().edit_count), (None, 0));
            }
            let (number, name) = match a.account().kind {
                AccountKind::Anonymous => (1, "ACCOUNT_KIND_ANONYMOUS"),
                AccountKind::Temporary => (2, "ACCOUNT_KIND_TEMPORARY"),
                AccountKind::Registered => (3, "ACCOUNT_KIND_REGISTERED"),
            };
            let kind = kind.unwrap_or(&serde_json::Value::Null);
            assert!(
                kind.as_u64() == Some(number) || kind.as_str() == Some(name),
                "decided as {:?}, asked as {kind}",
                a.account().kind
            );
        }
        Err(e) => {
            assert!(!e.field.is_empty() && !e.field.contains(' '), "no field named: {e}");
        }
    }
}

/// Policy loading: the text as `global.toml` and, after a NUL byte, as a wiki file. Whatever
/// checks must compile into a snapshot (with every source empty) and decide.
pub fn policy_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (global, wiki) = text.split_once('\0').unwrap_or((text, ""));
    let mut files = vec![PolicyFile {
        path: "global.toml".into(),
        text: global.into(),
    }];
    if !wiki.is_empty() {
        files.push(PolicyFile {
            path: "wikis/fuzzwiki.toml".into(),
            text: wiki.into(),
        });
    }
    let now = Timestamp::UNIX_EPOCH;
    if let Ok((policy, _warnings)) = check(&files, now) {
        let snap = Snapshot::build(policy, Vec::new(), "fuzz".into());
        for ip in [
            IpAddr::from([192, 0, 2, 1]),
            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
        ] {
            if let Ok(attempt) = Attempt::builder(ip).wiki("fuzzwiki").build() {
                let _ = decide(&snap, &attempt, now);
            }
        }
    }
}

/// Tor exit lists in every format; what parses prints and parses back to itself.
pub fn tor_list(data: &[u8]) {
    if let Ok((_format, ips)) = tor::parse_bytes(data) {
        for ip in ips {
            assert_eq!(ip.to_string().parse::<IpAddr>().ok(), Some(ip));
        }
    }
}

/// IP/CIDR lists; every network is canonical, so its printed form parses back to it, strict
/// or masked; a strict parse accepts a subset of the masked one; and the fast IPv4 path
/// accepts no line the general path would not, with the same network and the same view of
/// its host bits.
pub fn ip_list(data: &[u8]) {
    let masked = iplist::parse_bytes(data, true);
    if let Ok(nets) = &masked {
        for net in nets {
            assert_eq!(iplist::parse_net(&net.to_string()), Ok(*net));
        }
    }
    if let Ok(strict) = iplist::parse_bytes(data, false) {
        assert_eq!(Ok(&strict), masked.as_ref(), "strict accepted what masked did not");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.split('\n') {
            if let Some(net) = iplist::fast_v4(line.as_bytes()) {
                assert_eq!(
                    iplist::general_line(line, true),
                    Ok(Some(ipnet::IpNet::V4(net.trunc()))),
                    "{line:?}"
                );
                assert_eq!(
                    iplist::general_line(line, false).is_ok(),
                    net.trunc() == net,
                    "{line:?}"
                );
            }
        }
    }
}

/// Request IP parsing: never an IPv4-mapped IPv6 result, idempotent, errors name the field.
pub fn ip_normalize(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_ip("ip", text) {
        Ok(ip) => {
            if let IpAddr::V6(v6) = ip {
                assert!(v6.to_ipv4_mapped().is_none(), "mapped address left unnormalized");
            }
            assert_eq!(parse_ip("ip", &ip.to_string()).ok(), Some(ip));
        }
        Err(e) => assert_eq!(e.field, "ip"),
    }
}

/// Arbitrary bytes opened as each kind of MaxMind database; what opens must answer lookups.
pub fn maxmind_open(data: &[u8]) {
    for kind in [
        SourceKind::MaxmindAnonymous,
        SourceKind::MaxmindAsn,
        SourceKind::MaxmindCountry,
    ] {
        if let Ok(db) = MaxmindDb::open(data.to_vec(), kind) {
            for ip in [
                IpAddr::from([1, 2, 0, 1]),
                IpAddr::from([81, 2, 69, 160]),
                IpAddr::from([0x2001, 0x480, 0, 0, 0, 0, 0, 1]),
                IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
            ] {
                let _ = db.anon_flags(ip);
                let _ = db.asn(ip);
                let _ = db.country(ip);
            }
        }
    }
}
