//! `tor-exits` sources. The format is detected from the content:
//!
//! - the TorDNSEL exit list (`ExitNode` / `Published` / `LastStatus` / `ExitAddress` records),
//!   with or without an `@type tordnsel 1.0` / `Downloaded` header;
//! - the bulk exit list, one IP a line (`#` comments allowed);
//! - an Onionoo `details` document: only relays with the `Exit` flag count, through their
//!   `exit_addresses` and the host part of their `or_addresses`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use jiff::Timestamp;
use serde::Deserialize;

use super::{ParseError, snippet};
use crate::attempt::parse_ip;

/// Which of the three formats a file was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorFormat {
    /// TorDNSEL `exit-addresses`.
    TorDnsel,
    /// One address a line.
    Bulk,
    /// Onionoo `details` JSON.
    Onionoo,
}

/// Guesses the format: JSON starts with `{`; TorDNSEL has its keywords; anything else is bulk.
pub fn detect(text: &str) -> TorFormat {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') {
        return TorFormat::Onionoo;
    }
    let tordnsel = t
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .take(20)
        .any(|l| {
            let kw = l.split_whitespace().next().unwrap_or("");
            matches!(
                kw,
                "@type" | "ExitNode" | "ExitAddress" | "Published" | "LastStatus" | "Downloaded"
            )
        });
    if tordnsel { TorFormat::TorDnsel } else { TorFormat::Bulk }
}

/// Parses exit list bytes in any format, returning the distinct exit addresses in order.
pub fn parse_bytes(bytes: &[u8]) -> Result<(TorFormat, Vec<IpAddr>), ParseError> {
    let text = super::utf8(bytes)?;
    let format = detect(text);
    let ips = match format {
        TorFormat::TorDnsel => parse_tordnsel(text)?,
        TorFormat::Bulk => parse_bulk(text)?,
        TorFormat::Onionoo => parse_onionoo(text)?,
    };
    let mut seen = BTreeSet::new();
    Ok((format, ips.into_iter().filter(|ip| seen.insert(*ip)).collect()))
}

/// Parses a TorDNSEL exit list. Only `ExitAddress` lines carry addresses; the other known
/// keywords are checked for presence only, and an unknown keyword is an error (a truncated or
/// foreign file should not load as an empty list).
pub fn parse_tordnsel(text: &str) -> Result<Vec<IpAddr>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}');
        let mut words = line.split_whitespace();
        match words.next() {
            None => {}
            Some(w) if w.starts_with('#') => {}
            Some("ExitAddress") => {
                let addr = words
                    .next()
                    .ok_or_else(|| ParseError::at(i + 1, 1, "`ExitAddress` without an address"))?;
                let column = line.find(addr).unwrap_or(0) + 1;
                let ip = parse_ip("ExitAddress", addr)
                    .map_err(|_| ParseError::at(i + 1, column, format!("`{}` is not an IP address", snippet(addr))))?;
                out.push(ip);
            }
            Some("@type" | "Downloaded" | "ExitNode" | "Published" | "LastStatus") => {}
            Some(other) => {
                return Err(ParseError::at(
                    i + 1,
                    1,
                    format!("unknown TorDNSEL keyword `{}`", snippet(other)),
                ));
            }
        }
    }
    Ok(out)
}

/// Parses the bulk exit list: one address a line, `#` comments and blank lines skipped.
pub fn parse_bulk(text: &str) -> Result<Vec<IpAddr>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        let entry = line.trim().trim_start_matches('\u{feff}');
        if entry.is_empty() {
            continue;
        }
        let column = line.len() - line.trim_start().len() + 1;
        let ip = parse_ip("line", entry)
            .map_err(|_| ParseError::at(i + 1, column, format!("`{}` is not an IP address", snippet(entry))))?;
        out.push(ip);
    }
    Ok(out)
}

/// When an exit list was current, from its own timestamps, with the field it came from:
/// TorDNSEL's `Downloaded` header when present, else its newest record time (`Published`,
/// `LastStatus`, `ExitAddress`); Onionoo's `relays_published`. `None` for the bulk list, which
/// carries no time, and for a file whose times do not parse.
pub fn data_time(bytes: &[u8]) -> Option<(Timestamp, &'static str)> {
    let text = std::str::from_utf8(bytes).ok()?;
    match detect(text) {
        TorFormat::Bulk => None,
        TorFormat::Onionoo => {
            #[derive(Deserialize)]
            struct Published {
                relays_published: String,
            }
            let doc: Published = serde_json::from_str(text).ok()?;
            Some((utc(&doc.relays_published)?, "Onionoo relays_published"))
        }
        TorFormat::TorDnsel => {
            let mut newest: Option<Timestamp> = None;
            for line in text.lines() {
                let line = line.trim_start_matches('\u{feff}');
                let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
                let when = match keyword {
                    "Downloaded" => return utc(rest).map(|t| (t, "TorDNSEL Downloaded")),
                    "Published" | "LastStatus" => rest,
                    // `ExitAddress <ip> <date> <time>`
                    "ExitAddress" => rest.split_once(' ').map_or("", |(_, w)| w),
                    _ => continue,
                };
                if let Some(t) = utc(when) {
                    newest = newest.max(Some(t));
                }
            }
            newest.map(|t| (t, "TorDNSEL record times"))
        }
    }
}

/// `2018-10-11 12:07:38` (UTC, as the Tor Project writes it) as a timestamp.
fn utc(s: &str) -> Option<Timestamp> {
    let (date, time) = s.trim().split_once(' ')?;
    format!("{date}T{}Z", time.trim()).parse().ok()
}

#[derive(Deserialize)]
struct OnionooDoc {
    relays: Vec<OnionooRelay>,
}

#[derive(Deserialize)]
struct OnionooRelay {
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    exit_addresses: Vec<String>,
    #[serde(default)]
    or_addresses: Vec<String>,
}

/// Parses an Onionoo `details` document. Relays without the `Exit` flag are not exits.
pub fn parse_onionoo(text: &str) -> Result<Vec<IpAddr>, ParseError> {
    let doc: OnionooDoc = serde_json::from_str(text)
        .map_err(|e| ParseError::at(e.line(), e.column(), format!("invalid Onionoo details JSON: {e}")))?;
    let mut out = Vec::new();
    for relay in doc.relays.iter().filter(|r| r.flags.iter().any(|f| f == "Exit")) {
        for a in &relay.exit_addresses {
            out.push(parse_ip("exit_addresses", a).map_err(|e| ParseError::at(0, 0, e.to_string()))?);
        }
        for a in &relay.or_addresses {
            let host = or_address_host(a);
            out.push(parse_ip("or_addresses", host).map_err(|e| ParseError::at(0, 0, e.to_string()))?);
        }
    }
    Ok(out)
}

/// `1.2.3.4:9001` → `1.2.3.4`; `[2001:db8::1]:9001` → `2001:db8::1`.
fn or_address_host(a: &str) -> &str {
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match a.rsplit_once(':') {
        Some((host, _port)) => host,
        None => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(detect("{\"relays\":[]}"), TorFormat::Onionoo);
        assert_eq!(
            detect("@type tordnsel 1.0\nDownloaded 2024-01-01 00:00:00\n"),
            TorFormat::TorDnsel
        );
        assert_eq!(
            detect("ExitNode AB\nExitAddress 192.0.2.1 2018-10-11 12:07:38\n"),
            TorFormat::TorDnsel
        );
        assert_eq!(detect("192.0.2.1\n192.0.2.2\n"), TorFormat::Bulk);
    }

    #[test]
    fn tordnsel_with_header_and_duplicates() {
        let text = "@type tordnsel 1.0\nDownloaded 2024-01-01 00:00:00\nExitNode A\nPublished 2024-01-01 00:00:00\nLastStatus 2024-01-01 00:00:00\nExitAddress 192.0.2.1 2024-01-01 00:00:00\nExitNode B\nExitAddress 192.0.2.1 2024-01-01 00:00:00\nExitAddress 2001:db8::1 2024-01-01 00:00:00\n";
        let (fmt, ips) = parse_bytes(text.as_bytes()).unwrap();
        assert_eq!(fmt, TorFormat::TorDnsel);
        assert_eq!(
            ips,
            vec!["192.0.2.1".parse::<IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()]
        );
    }

    #[test]
    fn tordnsel_bad_address_names_line() {
        let err = parse_tordnsel("ExitNode A\nExitAddress 999.1.1.1 2024\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 13));
    }

    #[test]
    fn tordnsel_unknown_keyword_is_an_error() {
        assert!(parse_tordnsel("ExitNode A\nGarbage here\n").is_err());
    }

    #[test]
    fn data_time_comes_from_the_list_itself() {
        let dnsel = "ExitNode A\nPublished 2018-10-11 09:00:00\nLastStatus 2018-10-11 12:03:00\nExitAddress 192.0.2.1 2018-10-11 12:07:38\n";
        let (t, field) = data_time(dnsel.as_bytes()).unwrap();
        assert_eq!(
            (t.to_string().as_str(), field),
            ("2018-10-11T12:07:38Z", "TorDNSEL record times")
        );
        let with_header = format!("@type tordnsel 1.0\nDownloaded 2024-01-01 00:05:00\n{dnsel}");
        assert_eq!(data_time(with_header.as_bytes()).unwrap().1, "TorDNSEL Downloaded");
        let onionoo = r#"{"relays_published":"2021-10-09 12:00:00","relays":[]}"#;
        assert_eq!(
            data_time(onionoo.as_bytes()).unwrap().0.to_string(),
            "2021-10-09T12:00:00Z"
        );
        assert_eq!(data_time(b"192.0.2.1\n"), None, "a bulk list has no time");
    }

    #[test]
    fn or_address_hosts() {
        assert_eq!(or_address_host("128.31.0.13:443"), "128.31.0.13");
        assert_eq!(or_address_host("[2001:db8::1]:9001"), "2001:db8::1");
    }

    #[test]
    fn onionoo_non_exit_relays_are_ignored() {
        let doc = r#"{"relays":[
            {"flags":["Guard"],"or_addresses":["192.0.2.1:443"]},
            {"flags":["Exit"],"or_addresses":["192.0.2.2:443","[2001:db8::2]:443"],"exit_addresses":["192.0.2.3"]}]}"#;
        let (fmt, ips) = parse_bytes(doc.as_bytes()).unwrap();
        assert_eq!(fmt, TorFormat::Onionoo);
        let want: Vec<IpAddr> = ["192.0.2.3", "192.0.2.2", "2001:db8::2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(ips, want);
    }

    #[test]
    fn broken_json_is_an_error_with_position() {
        let err = parse_bytes(b"{\"relays\": [ {\"flags\": }").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("Onionoo"));
    }
}
