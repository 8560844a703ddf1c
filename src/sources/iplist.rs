//! `ip-list` sources: one IP or CIDR a line, IPv4 and IPv6; `#` starts a comment.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{ParseError, snippet};
use crate::attempt::normalize_ip;

/// Parses one IP or CIDR. Host bits are cleared (`192.0.2.7/24` is `192.0.2.0/24`) because
/// published lists often write networks that way; IPv4-mapped IPv6 becomes IPv4.
pub fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(match net {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).ok()?.trunc(),
                None => net.trunc(),
            },
            _ => net.trunc(),
        });
    }
    s.parse::<IpAddr>().ok().map(|ip| IpNet::from(normalize_ip(ip)))
}

/// Parses a whole list. Blank lines and `#` comments (whole-line or trailing) are skipped; any
/// other line that is not an IP or CIDR is an error naming its line and column.
///
/// Lines are cut as [`str::lines`] cuts them. Each line first goes through `fast_v4`, which
/// takes the common `a.b.c.d[/n]` shape in one pass over its bytes; anything else (IPv6, odd
/// spacing, errors) takes the general path. A 1M-prefix list spent 40% of its load in the
/// general path's per-line searches and ipnet's backtracking parser.
pub fn parse(text: &str) -> Result<Vec<IpNet>, ParseError> {
    let mut out = Vec::with_capacity(text.len() / 16);
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        crate::pace::tick(number);
        let (raw, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        if let Some(net) = fast_v4(raw.as_bytes()) {
            out.push(IpNet::V4(net));
            continue;
        }
        match general_line(raw) {
            Ok(Some(net)) => out.push(net),
            Ok(None) => {}
            Err((column, entry)) => {
                return Err(ParseError::at(
                    number,
                    column,
                    format!("`{}` is not an IP address or CIDR network", snippet(entry)),
                ));
            }
        }
    }
    Ok(out)
}

/// One line (without its `\n`) by the general path: `Ok(None)` for a blank or comment line,
/// `Err((column, entry))` for a line that is not an IP or CIDR.
pub(crate) fn general_line(raw: &str) -> Result<Option<IpNet>, (usize, &str)> {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let line = raw.split_once('#').map_or(raw, |(before, _)| before);
    let entry = line.trim();
    if entry.is_empty() {
        return Ok(None);
    }
    let column = line.len() - line.trim_start().len() + 1;
    parse_net(entry).map(Some).ok_or((column, entry))
}

/// The canonical IPv4 line: optional spaces or tabs, `a.b.c.d` (decimal, no leading zeros),
/// an optional `/n` (0–32, no leading zero), optional blanks, then the end of the line or a
/// `#` comment. `None` for anything else, which the caller gives to the general parser, so
/// this only ever accepts a subset of what [`parse_net`] accepts, with the same result
/// (checked by a property test and the `ip_list` fuzz target). Written by hand because no
/// parser crate offers a strict single-pass form of this, and it is the bulk of every large
/// published list.
pub(crate) fn fast_v4(line: &[u8]) -> Option<ipnet::Ipv4Net> {
    let mut i = line.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let number = |i: &mut usize, max: u32| -> Option<u32> {
        let start = *i;
        let mut v = 0u32;
        while let Some(d) = line.get(*i).filter(|b| b.is_ascii_digit()) {
            v = v * 10 + u32::from(d - b'0');
            *i += 1;
            if *i - start > 3 {
                return None;
            }
        }
        let digits = *i - start;
        (digits > 0 && v <= max && (digits == 1 || line[start] != b'0')).then_some(v)
    };
    let mut addr = 0u32;
    for octet in 0..4 {
        if octet > 0 {
            (line.get(i) == Some(&b'.')).then_some(())?;
            i += 1;
        }
        addr = addr << 8 | number(&mut i, 255)?;
    }
    let mut len = 32;
    if line.get(i) == Some(&b'/') {
        i += 1;
        len = number(&mut i, 32)?;
    }
    i += line[i..]
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
        .count();
    if i < line.len() && line[i] != b'#' {
        return None;
    }
    ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len as u8)
        .ok()
        .map(|n| n.trunc())
}

/// Parses list bytes, rejecting text that is not UTF-8 (a binary file given by mistake).
pub fn parse_bytes(bytes: &[u8]) -> Result<Vec<IpNet>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ParseError::at(
            0,
            0,
            format!("not a text file (invalid UTF-8 at byte {})", e.valid_up_to()),
        )
    })?;
    parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_both_families() {
        let nets = parse("# header\n\n192.0.2.0/24\n  2001:db8::/32 # docs\n203.0.113.7\n").unwrap();
        let want: Vec<IpNet> = ["192.0.2.0/24", "2001:db8::/32", "203.0.113.7/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(nets, want);
    }

    #[test]
    fn host_bits_are_cleared_and_mapped_becomes_v4() {
        assert_eq!(parse_net("192.0.2.7/24"), "192.0.2.0/24".parse().ok());
        assert_eq!(parse_net("::ffff:192.0.2.0/120"), "192.0.2.0/24".parse().ok());
    }

    #[test]
    fn bad_line_has_line_and_column() {
        let err = parse("192.0.2.1\n  banana\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        assert!(err.message.contains("`banana`"), "{}", err.message);
    }

    #[test]
    fn fast_path_takes_canonical_ipv4_and_leaves_the_rest() {
        for (line, want) in [
            ("192.0.2.7", Some("192.0.2.7/32")),
            ("  192.0.2.7/24 \t# office", Some("192.0.2.0/24")),
            ("0.0.0.0/0", Some("0.0.0.0/0")),
            ("255.255.255.255/32\r", Some("255.255.255.255/32")),
            ("10.0.0.1#x", Some("10.0.0.1/32")),
        ] {
            assert_eq!(fast_v4(line.as_bytes()), want.map(|w| w.parse().unwrap()), "{line:?}");
        }
        // Left to the general path: leading zeros, out of range, IPv6, odd endings.
        for line in [
            "010.0.0.1",
            "1.2.3.4/08",
            "256.0.0.1",
            "1.2.3.4/33",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.4/",
            "::1",
            "1.2.3.4 x",
            "1.2.3.4\r5",
            "",
            "# only",
            "\u{a0}1.2.3.4",
            "1.2.3.4/24/8",
        ] {
            assert_eq!(fast_v4(line.as_bytes()), None, "{line:?}");
        }
    }

    #[test]
    fn errors_are_the_same_whichever_path_a_line_nearly_took() {
        let err = parse("192.0.2.1\n10.0.0.1/33 # too long\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
        assert!(err.message.contains("`10.0.0.1/33`"), "{}", err.message);
        let err = parse("192.0.2.1\r\n\t 1.2.3.4 x\r\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
    }

    /// Lines near the canonical IPv4 shape: the pieces mix valid and invalid forms.
    fn near_v4_line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        // Weighted so that about one line in eight is canonical and the property bites.
        let octet = prop_oneof![
            30 => (0u32..=255).prop_map(|v| v.to_string()),
            1 => Just("00".to_owned()),
            1 => Just("01".to_owned()),
            1 => Just("256".to_owned()),
            1 => Just("1000".to_owned()),
            1 => Just(String::new()),
        ];
        let len = prop_oneof![
            3 => Just(String::new()),
            6 => (0u32..=40).prop_map(|v| format!("/{v}")),
            1 => Just("/08".to_owned()),
            1 => Just("/".to_owned()),
        ];
        let blank = prop::sample::select(vec!["", "", "", " ", "\t", "  ", "\r", "\u{a0}"]);
        let tail = prop::sample::select(vec!["", "", "", "#", " # note", "x", " x", "/8", ".", ":1"]);
        let octets = prop_oneof![
            1 => prop::collection::vec(octet.clone(), 3),
            8 => prop::collection::vec(octet.clone(), 4),
            1 => prop::collection::vec(octet, 5),
        ];
        (blank.clone(), octets, len, blank, tail)
            .prop_map(|(lead, octets, len, gap, tail)| format!("{lead}{}{len}{gap}{tail}", octets.join(".")))
    }

    proptest::proptest! {
        /// The fast path accepts only what the general path accepts, with the same network.
        #[test]
        fn fast_path_agrees_with_the_general_path(line in near_v4_line()) {
            if let Some(net) = fast_v4(line.as_bytes()) {
                proptest::prop_assert_eq!(general_line(&line), Ok(Some(IpNet::V4(net))));
            }
        }

        /// Every canonical IPv4 network, printed, takes the fast path.
        #[test]
        fn canonical_ipv4_takes_the_fast_path(addr in proptest::prelude::any::<u32>(), len in 0u8..=32) {
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len).unwrap().trunc();
            proptest::prop_assert_eq!(fast_v4(net.to_string().as_bytes()), Some(net));
        }
    }

    #[test]
    fn binary_is_rejected() {
        assert!(parse_bytes(&[0xff, 0xfe, 0x00]).is_err());
    }
}
