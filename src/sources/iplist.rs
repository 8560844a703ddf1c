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
pub fn parse(text: &str) -> Result<Vec<IpNet>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split_once('#').map_or(raw, |(before, _)| before);
        let entry = line.trim();
        if entry.is_empty() {
            continue;
        }
        let column = line.len() - line.trim_start().len() + 1;
        match parse_net(entry) {
            Some(net) => out.push(net),
            None => {
                return Err(ParseError::at(
                    i + 1,
                    column,
                    format!("`{}` is not an IP address or CIDR network", snippet(entry)),
                ));
            }
        }
    }
    Ok(out)
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
    fn binary_is_rejected() {
        assert!(parse_bytes(&[0xff, 0xfe, 0x00]).is_err());
    }
}
