//! `ip-list` sources: one IP or CIDR a line, IPv4 and IPv6; `#` starts a comment.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{ParseError, snippet};
use crate::pace::Pacer;

/// Why a list entry or a rule's `ip` value is not a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// Not an address or a CIDR network (octets or prefix lengths with leading zeros
    /// included, as `std` refuses them in addresses).
    Invalid,
    /// A network written with host bits set (`203.0.113.4/24`): `meant` is the network it
    /// lies in (`203.0.113.0/24`). Usually a typo for one address, so not taken silently.
    HostBits {
        /// The network the text lies in.
        meant: IpNet,
    },
}

impl NetError {
    /// Why `text` is not a network, in words.
    pub fn describe(&self, text: &str) -> String {
        match self {
            Self::Invalid => format!("`{}` is not an IP address or CIDR network", snippet(text)),
            Self::HostBits { meant } => {
                let host = match meant {
                    IpNet::V4(_) => 32,
                    IpNet::V6(_) => 128,
                };
                let size = match host - meant.prefix_len() {
                    bits @ 0..=63 => format!("{} addresses", 1u64 << bits),
                    bits => format!("2^{bits} addresses"),
                };
                let addr = text.split('/').next().unwrap_or(text);
                format!(
                    "`{}` has host bits set: as a network it is `{meant}` ({size}); write `{meant}`, or `{}/{host}` for the one address",
                    snippet(text),
                    snippet(addr)
                )
            }
        }
    }
}

/// Parses one IP or CIDR strictly: IPv4-mapped IPv6 becomes IPv4, and a network with host
/// bits set is an error that says which network it would mean.
pub fn parse_net(s: &str) -> Result<IpNet, NetError> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    // std's parser, unlike ipnet's, refuses leading zeros (`010.0.0.1`): they read as octal
    // in some tools and decimal in others.
    let ip: IpAddr = addr.parse().map_err(|_| NetError::Invalid)?;
    let net = match len {
        None => IpNet::from(ip),
        Some(l) => {
            let digits = !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit());
            if !digits || (l.len() > 1 && l.starts_with('0')) {
                return Err(NetError::Invalid);
            }
            let l: u8 = l.parse().map_err(|_| NetError::Invalid)?;
            IpNet::new(ip, l).map_err(|_| NetError::Invalid)?
        }
    };
    let net = match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).map_err(|_| NetError::Invalid)?,
            None => net,
        },
        _ => net,
    };
    if net.trunc() != net {
        return Err(NetError::HostBits { meant: net.trunc() });
    }
    Ok(net)
}

/// Parses a whole list. Blank lines and `#` comments (whole-line or trailing) are skipped; any
/// other line that is not an IP or CIDR is an error naming its line and column. A network
/// with host bits set is an error too, unless `mask_host_bits` (then it is the network it
/// lies in).
///
/// Lines are cut as [`str::lines`] cuts them. Each line first goes through `fast_v4`, which
/// takes the common `a.b.c.d[/n]` shape in one pass over its bytes; anything else (IPv6, odd
/// spacing, errors) takes the general path. A 1M-prefix list spent 40% of its load in the
/// general path's per-line searches and ipnet's backtracking parser.
pub fn parse(text: &str, mask_host_bits: bool) -> Result<Vec<IpNet>, ParseError> {
    parse_paced(text, mask_host_bits, &mut Pacer::none())
}

/// [`parse`], giving way at `pacer`'s points (see [`crate::pace`]).
pub fn parse_paced(text: &str, mask_host_bits: bool, pacer: &mut Pacer<'_>) -> Result<Vec<IpNet>, ParseError> {
    let mut out = Vec::with_capacity(text.len() / 16);
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        pacer.tick(number);
        let (raw, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        if let Some(net) = fast_v4(raw.as_bytes())
            && (mask_host_bits || net.trunc() == net)
        {
            out.push(IpNet::V4(net.trunc()));
            continue;
        }
        match general_line(raw, mask_host_bits) {
            Ok(Some(net)) => out.push(net),
            Ok(None) => {}
            Err((column, entry, why)) => {
                let mut message = why.describe(entry);
                if matches!(why, NetError::HostBits { .. }) {
                    message.push_str("; or set `mask_host_bits = true` on the source if the list is written that way");
                }
                return Err(ParseError::at(number, column, message));
            }
        }
    }
    Ok(out)
}

/// One line (without its `\n`) by the general path: `Ok(None)` for a blank or comment line,
/// `Err((column, entry, why))` for a line that is not an IP or CIDR.
#[doc(hidden)] // public for the fuzz property comparing both paths (editgate-testkit)
pub fn general_line(raw: &str, mask_host_bits: bool) -> Result<Option<IpNet>, (usize, &str, NetError)> {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let line = raw.split_once('#').map_or(raw, |(before, _)| before);
    let entry = line.trim();
    if entry.is_empty() {
        return Ok(None);
    }
    let column = line.len() - line.trim_start().len() + 1;
    match parse_net(entry) {
        Ok(net) => Ok(Some(net)),
        Err(NetError::HostBits { meant }) if mask_host_bits => Ok(Some(meant)),
        Err(why) => Err((column, entry, why)),
    }
}

/// The canonical IPv4 line: optional spaces or tabs, `a.b.c.d` (decimal, no leading zeros),
/// an optional `/n` (0–32, no leading zero), optional blanks, then the end of the line or a
/// `#` comment. `None` for anything else, which the caller gives to the general parser, so
/// this only ever accepts a subset of what [`parse_net`] accepts, with the same result; the
/// network comes back as written, host bits included, for the caller to judge (checked by a
/// property test and the `ip_list` fuzz target). Written by hand because no
/// parser crate offers a strict single-pass form of this, and it is the bulk of every large
/// published list.
#[doc(hidden)] // public for the fuzz property comparing both paths (editgate-testkit)
pub fn fast_v4(line: &[u8]) -> Option<ipnet::Ipv4Net> {
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
    ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len as u8).ok()
}

/// Parses list bytes, rejecting text that is not UTF-8 (a binary file given by mistake).
pub fn parse_bytes(bytes: &[u8], mask_host_bits: bool) -> Result<Vec<IpNet>, ParseError> {
    parse(super::utf8(bytes)?, mask_host_bits)
}

/// [`parse_bytes`], giving way at `pacer`'s points.
pub fn parse_bytes_paced(bytes: &[u8], mask_host_bits: bool, pacer: &mut Pacer<'_>) -> Result<Vec<IpNet>, ParseError> {
    parse_paced(super::utf8(bytes)?, mask_host_bits, pacer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_both_families() {
        let nets = parse("# header\n\n192.0.2.0/24\n  2001:db8::/32 # docs\n203.0.113.7\n", false).unwrap();
        let want: Vec<IpNet> = ["192.0.2.0/24", "2001:db8::/32", "203.0.113.7/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(nets, want);
    }

    /// A network with host bits set is refused, saying what it would
    /// mean, in rules and lists alike, unless a list opts into masking.
    #[test]
    fn host_bits_are_an_error_naming_the_network_meant() {
        let meant: IpNet = "203.0.113.0/24".parse().unwrap();
        assert_eq!(parse_net("203.0.113.4/24"), Err(NetError::HostBits { meant }));
        let msg = NetError::HostBits { meant }.describe("203.0.113.4/24");
        assert!(
            msg.contains("`203.0.113.0/24` (256 addresses)") && msg.contains("`203.0.113.4/32`"),
            "{msg}"
        );
        assert_eq!(
            parse_net("::ffff:192.0.2.7/120"),
            Err(NetError::HostBits {
                meant: "192.0.2.0/24".parse().unwrap()
            })
        );
        assert_eq!(parse_net("::ffff:192.0.2.0/120"), Ok("192.0.2.0/24".parse().unwrap()));
        assert!(matches!(parse_net("2001:db8::1/32"), Err(NetError::HostBits { .. })));

        let list = "192.0.2.0/24\n\t203.0.113.4/24 # typo\n";
        let err = parse(list, false).unwrap_err();
        assert_eq!((err.line, err.column), (2, 2));
        assert!(err.message.contains("mask_host_bits"), "{}", err.message);
        let masked = parse(list, true).unwrap();
        assert_eq!(masked[1], meant);
        let err = parse("2001:db8::1/32\n", false).unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn leading_zeros_are_refused_in_networks_as_in_addresses() {
        for bad in [
            "010.0.0.0/8",
            "10.0.0.0/08",
            "1.2.3.4/+8",
            "1.2.3.4/-1",
            "1.2.3.4/",
            "1.2.3.4/33",
        ] {
            assert_eq!(parse_net(bad), Err(NetError::Invalid), "{bad}");
            assert!(parse(bad, true).is_err(), "{bad}");
        }
        assert_eq!(parse_net("0.0.0.0/0"), Ok("0.0.0.0/0".parse().unwrap()));
        assert_eq!(parse_net("10.0.0.0/8"), Ok("10.0.0.0/8".parse().unwrap()));
    }

    #[test]
    fn bad_line_has_line_and_column() {
        let err = parse("192.0.2.1\n  banana\n", false).unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        assert!(err.message.contains("`banana`"), "{}", err.message);
    }

    #[test]
    fn fast_path_takes_canonical_ipv4_and_leaves_the_rest() {
        for (line, want) in [
            ("192.0.2.7", Some("192.0.2.7/32")),
            ("  192.0.2.7/24 \t# office", Some("192.0.2.7/24")),
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
        let err = parse("192.0.2.1\n10.0.0.1/33 # too long\n", false).unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
        assert!(err.message.contains("`10.0.0.1/33`"), "{}", err.message);
        let err = parse("192.0.2.1\r\n\t 1.2.3.4 x\r\n", false).unwrap_err();
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
        /// The fast path accepts only what the general path accepts, with the same network,
        /// and sees host bits where the general path does.
        #[test]
        fn fast_path_agrees_with_the_general_path(line in near_v4_line()) {
            if let Some(net) = fast_v4(line.as_bytes()) {
                proptest::prop_assert_eq!(general_line(&line, true), Ok(Some(IpNet::V4(net.trunc()))));
                proptest::prop_assert_eq!(general_line(&line, false).is_ok(), net.trunc() == net);
            }
        }

        /// Every canonical IPv4 network, printed, takes the fast path.
        #[test]
        fn canonical_ipv4_takes_the_fast_path(addr in proptest::prelude::any::<u32>(), len in 0u8..=32) {
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len).unwrap().trunc();
            proptest::prop_assert_eq!(fast_v4(net.to_string().as_bytes()), Some(net));
        }
    }

    /// Invalid UTF-8 is reported at its line and column.
    #[test]
    fn binary_is_rejected_at_its_position() {
        assert!(parse_bytes(&[0xff, 0xfe, 0x00], false).is_err());
        let err = parse_bytes(b"192.0.2.1\n10.0.\xff0.0\n", false).unwrap_err();
        assert_eq!((err.line, err.column), (2, 6), "{err:?}");
    }
}
