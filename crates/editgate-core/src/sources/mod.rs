//! Pure parsers for the data sources rules refer to: bytes in, data out.
//!
//! - [`tor`]: Tor exit lists in any of the three published formats;
//! - [`iplist`]: plain IP/CIDR lists;
//! - [`maxmind`]: MaxMind DB readers for Anonymous IP flags, ASN and country;
//! - [`spur`]: Spur's anonymous-IP feeds (NDJSON, gzipped or not), read as a stream.
//!
//! Nothing here opens a file: [`crate::load`] hands over the bytes (a reader, for a feed), so
//! the fuzzers, the tests and the server all parse the same way.

pub mod iplist;
pub mod maxmind;
pub mod spur;
pub mod tor;

use std::fmt;

/// Kinds of source, as written in `kind = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Tor exit addresses (TorDNSEL, bulk list or Onionoo details JSON).
    TorExits,
    /// One IP or CIDR a line.
    IpList,
    /// GeoIP2 Anonymous IP / Anonymous Plus; membership by configured flags.
    MaxmindAnonymous,
    /// GeoLite2 / GeoIP2 ASN; enables the `asn` condition.
    MaxmindAsn,
    /// GeoLite2 / GeoIP2 Country (or City); enables the `country` condition.
    MaxmindCountry,
    /// Spur's anonymous-IP feed (NDJSON, gzipped or not); enables the reputation conditions
    /// (`tunnel_operators`, `risks`, `min_clients`, …).
    SpurFeed,
}

impl SourceKind {
    /// Every kind.
    pub const ALL: [SourceKind; 6] = [
        Self::TorExits,
        Self::IpList,
        Self::MaxmindAnonymous,
        Self::MaxmindAsn,
        Self::MaxmindCountry,
        Self::SpurFeed,
    ];

    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TorExits => "tor-exits",
            Self::IpList => "ip-list",
            Self::MaxmindAnonymous => "maxmind-anonymous",
            Self::MaxmindAsn => "maxmind-asn",
            Self::MaxmindCountry => "maxmind-country",
            Self::SpurFeed => "spur-feed",
        }
    }

    /// Parses a policy-file kind name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the source is a set of networks that goes into the prefix index.
    pub fn is_network_list(self) -> bool {
        matches!(self, Self::TorExits | Self::IpList)
    }

    /// Whether the source counts entries (addresses or networks), so that `min_entries` and
    /// shrink protection apply: the lists, and Spur's feeds.
    pub fn has_entries(self) -> bool {
        self.is_network_list() || self == Self::SpurFeed
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parse error inside a data file; `line` is 1-based, 0 when the error is not tied to a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// 1-based line, or 0.
    pub line: usize,
    /// 1-based column, or 0.
    pub column: usize,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
}

impl ParseError {
    /// An error at `line`:`column` (0 when unknown).
    pub fn at(line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            column,
            message: message.into(),
        }
    }
}

/// The bytes of a text file as UTF-8, or an error at the line and column of the first byte
/// that is not (a binary file given by mistake).
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        // The column counts characters, as editors do.
        let column = String::from_utf8_lossy(&valid[line_start..]).chars().count() + 1;
        ParseError::at(
            line,
            column,
            format!("not a text file (invalid UTF-8 at byte {})", e.valid_up_to()),
        )
    })
}

/// Shortens user input for an error message, so a binary file does not flood the terminal.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// A duration in seconds, in words with two units at most: `4y 48d`, `3h 2m`, `45s`.
pub fn human_secs(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let units = [("y", 365 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut out = Vec::new();
    let mut rest = s;
    for (name, size) in units {
        if rest >= size || (out.is_empty() && size == 1) {
            out.push(format!("{}{name}", rest / size));
            rest %= size;
        }
        if out.len() == 2 || (!out.is_empty() && rest == 0) {
            break;
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_words() {
        assert_eq!(human_secs(0.0), "0s");
        assert_eq!(human_secs(45.4), "45s");
        assert_eq!(human_secs(3.0 * 3600.0 + 125.0), "3h 2m");
        assert_eq!(human_secs(7200.0), "2h");
        assert_eq!(human_secs((4 * 365 + 48) as f64 * 86_400.0 + 3600.0), "4y 48d");
    }
}
