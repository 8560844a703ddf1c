//! MaxMind DB sources, read with the `maxminddb` crate from bytes held in memory.
//!
//! The whole file is read into memory rather than memory-mapped: `geoipupdate` replaces
//! databases by renaming a new file into place, and a private copy means a reload can never
//! observe a file half-written, and a truncated file cannot fault the process (an mmap of a
//! file that shrinks raises SIGBUS). Every database is checked with [`Reader::verify`] when it
//! loads, so a corrupt file is rejected at load time instead of failing lookups later.

use std::net::IpAddr;

use maxminddb::{Reader, geoip2};

use super::{ParseError, SourceKind};

/// The GeoIP2 Anonymous IP flags a `maxmind-anonymous` source can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(rename_all = "snake_case")]
pub enum AnonFlag {
    /// `is_anonymous`: any kind of anonymizer.
    #[schemars(rename = "is_anonymous")]
    Anonymous,
    /// `is_anonymous_vpn`: a commercial VPN provider.
    #[schemars(rename = "is_anonymous_vpn")]
    AnonymousVpn,
    /// `is_hosting_provider`: a hosting or VPN provider.
    #[schemars(rename = "is_hosting_provider")]
    HostingProvider,
    /// `is_public_proxy`: an open proxy.
    #[schemars(rename = "is_public_proxy")]
    PublicProxy,
    /// `is_residential_proxy`: an anonymizer on a residential network.
    #[schemars(rename = "is_residential_proxy")]
    ResidentialProxy,
    /// `is_tor_exit_node`: a Tor exit.
    #[schemars(rename = "is_tor_exit_node")]
    TorExitNode,
}

impl AnonFlag {
    /// Every flag.
    pub const ALL: [AnonFlag; 6] = [
        Self::Anonymous,
        Self::AnonymousVpn,
        Self::HostingProvider,
        Self::PublicProxy,
        Self::ResidentialProxy,
        Self::TorExitNode,
    ];

    /// The field name in the database and in `flags = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "is_anonymous",
            Self::AnonymousVpn => "is_anonymous_vpn",
            Self::HostingProvider => "is_hosting_provider",
            Self::PublicProxy => "is_public_proxy",
            Self::ResidentialProxy => "is_residential_proxy",
            Self::TorExitNode => "is_tor_exit_node",
        }
    }

    /// Parses a field name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The flag's bit in a flag mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Names of the flags set in `mask`.
    pub fn names(mask: u8) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|f| mask & f.bit() != 0)
            .map(Self::as_str)
            .collect()
    }
}

/// An open, verified MaxMind database.
pub struct MaxmindDb {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for MaxmindDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxmindDb")
            .field("database_type", &self.database_type())
            .finish()
    }
}

impl MaxmindDb {
    /// Opens database bytes for a source of `kind`, verifying the whole file and checking that
    /// its `database_type` suits the kind (an ASN database given as a country source is an
    /// error, not a source that never matches).
    pub fn open(bytes: Vec<u8>, kind: SourceKind) -> Result<Self, ParseError> {
        let reader = Reader::from_source(bytes)
            .map_err(|e| ParseError::at(0, 0, format!("not a valid MaxMind database: {e}")))?;
        reader
            .verify()
            .map_err(|e| ParseError::at(0, 0, format!("corrupt MaxMind database: {e}")))?;
        let db_type = reader.metadata().database_type.clone();
        let ok = match kind {
            SourceKind::MaxmindAnonymous => db_type.contains("Anonymous"),
            SourceKind::MaxmindAsn => db_type.contains("ASN") || db_type.contains("ISP"),
            SourceKind::MaxmindCountry => {
                db_type.contains("Country") || db_type.contains("City") || db_type.contains("Enterprise")
            }
            SourceKind::TorExits | SourceKind::IpList | SourceKind::SpurFeed => false,
        };
        if !ok {
            return Err(ParseError::at(
                0,
                0,
                format!("database type `{db_type}` does not fit a `{kind}` source"),
            ));
        }
        Ok(Self { reader })
    }

    /// The `database_type` from the metadata (`GeoIP2-Anonymous-IP`, `GeoLite2-ASN`, ...).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built (seconds since the epoch).
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// When the database in `bytes` was built, read from its metadata alone (no verification:
    /// the loader opens it in full too).
    pub fn build_time(bytes: &[u8]) -> Option<jiff::Timestamp> {
        let reader = Reader::from_source(bytes).ok()?;
        jiff::Timestamp::from_second(i64::try_from(reader.metadata().build_epoch).ok()?).ok()
    }

    /// The Anonymous IP flags set for `ip`, as a mask of [`AnonFlag::bit`]s; 0 when the IP is
    /// not in the database. A lookup error counts as "not listed": the database was verified
    /// when it loaded, and the engine must not fail.
    pub fn anon_flags(&self, ip: IpAddr) -> u8 {
        let Ok(Some(rec)) = self.reader.lookup(ip).and_then(|r| r.decode::<geoip2::AnonymousIp>()) else {
            return 0;
        };
        let fields = [
            rec.is_anonymous,
            rec.is_anonymous_vpn,
            rec.is_hosting_provider,
            rec.is_public_proxy,
            rec.is_residential_proxy,
            rec.is_tor_exit_node,
        ];
        AnonFlag::ALL
            .into_iter()
            .zip(fields)
            .filter(|(_, v)| *v == Some(true))
            .fold(0, |m, (f, _)| m | f.bit())
    }

    /// The autonomous system number and organization of `ip`.
    pub fn asn(&self, ip: IpAddr) -> Option<(u32, Option<String>)> {
        let rec = self.reader.lookup(ip).ok()?.decode::<geoip2::Asn>().ok()??;
        Some((
            rec.autonomous_system_number?,
            rec.autonomous_system_organization.map(str::to_owned),
        ))
    }

    /// The ISO 3166-1 alpha-2 country code of `ip`, upper-case.
    pub fn country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let rec = self.reader.lookup(ip).ok()?.decode::<geoip2::Country>().ok()??;
        let code = rec.country.iso_code?.as_bytes();
        match code {
            [a, b] => Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
            _ => None,
        }
    }
}
