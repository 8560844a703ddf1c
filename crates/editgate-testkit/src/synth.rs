//! Deterministic synthetic data for benches and the load generator: random prefixes and
//! addresses, and a large policy directory built around the real fixture lists.
//!
//! Generated in code rather than stored, so a 1M-prefix policy costs nothing in the
//! repository and every run measures the same data.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// xorshift64*: small, fast and deterministic; statistical quality is irrelevant here, and a
/// fixed seed must give the same data on every machine (which `rand`'s defaults do not
/// promise across versions).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn global_v6(&mut self) -> u128 {
        // Inside 2000::/3, where real IPv6 unicast lives.
        let a = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        a & !(0xE000_u128 << 112) | (0x2000_u128 << 112)
    }

    /// A random address: one in five is IPv6.
    pub fn ip(&mut self) -> IpAddr {
        if self.below(5) == 0 {
            IpAddr::V6(Ipv6Addr::from(self.global_v6()))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.next_u64() as u32))
        }
    }

    /// A random network: IPv4 /16–/32, or (one in five) IPv6 /32–/64.
    pub fn net(&mut self) -> IpNet {
        if self.below(5) == 0 {
            let len = 32 + self.below(33) as u8;
            Ipv6Net::new(Ipv6Addr::from(self.global_v6()), len)
                .map(|n| IpNet::V6(n.trunc()))
                .unwrap_or_default()
        } else {
            let len = 16 + self.below(17) as u8;
            Ipv4Net::new(Ipv4Addr::from(self.next_u64() as u32), len)
                .map(|n| IpNet::V4(n.trunc()))
                .unwrap_or_default()
        }
    }

    /// A random address inside `net`.
    pub fn ip_in(&mut self, net: &IpNet) -> IpAddr {
        match net {
            IpNet::V4(n) => {
                let host = u32::MAX.checked_shr(u32::from(n.prefix_len())).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | (self.next_u64() as u32 & host)))
            }
            IpNet::V6(n) => {
                let host = u128::MAX.checked_shr(u32::from(n.prefix_len())).unwrap_or(0);
                let r = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | (r & host)))
            }
        }
    }
}

/// Writes the benchmark policy into `dir`: `prefixes` random networks split over four
/// `ip-list` sources, the real Tor, X4BNet VPN and datacenter lists, MaxMind's test Anonymous
/// IP, ASN and Country databases (all copied from `fixtures`, the `tests/fixtures`
/// directory), and `rules` rules mixing account, IP, ASN and country conditions.
pub fn write_policy(dir: &Path, fixtures: &Path, prefixes: usize, rules: usize, seed: u64) -> std::io::Result<()> {
    for (from, to) in [
        ("tor/exit-addresses-2018-10-11.txt", "tor.txt"),
        ("iplists/x4bnet-vpn-ipv4.txt", "vpn4.txt"),
        ("iplists/x4bnet-vpn-ipv6.txt", "vpn6.txt"),
        ("iplists/x4bnet-datacenter-ipv4.txt", "dc4.txt"),
        ("iplists/x4bnet-datacenter-ipv6.txt", "dc6.txt"),
        ("maxmind/GeoIP2-Anonymous-IP-Test.mmdb", "anon.mmdb"),
        ("maxmind/GeoLite2-ASN-Test.mmdb", "asn.mmdb"),
        ("maxmind/GeoLite2-Country-Test.mmdb", "country.mmdb"),
    ] {
        std::fs::copy(fixtures.join(from), dir.join(to))?;
    }
    let mut rng = Rng::new(seed);
    let mut global = String::from("[settings]\ndefault = \"allow\"\n\n");
    for (name, kind, path) in [
        ("tor", "tor-exits", "tor.txt"),
        ("vpn4", "ip-list", "vpn4.txt"),
        ("vpn6", "ip-list", "vpn6.txt"),
        ("dc4", "ip-list", "dc4.txt"),
        ("dc6", "ip-list", "dc6.txt"),
    ] {
        let _ = writeln!(global, "[sources.{name}]\nkind = \"{kind}\"\npath = \"{path}\"\n");
    }
    for b in 0..4 {
        let mut text = String::with_capacity(prefixes / 4 * 20);
        for _ in 0..prefixes / 4 {
            let _ = writeln!(text, "{}", rng.net());
        }
        std::fs::write(dir.join(format!("big{b}.txt")), text)?;
        let _ = writeln!(global, "[sources.big{b}]\nkind = \"ip-list\"\npath = \"big{b}.txt\"\n");
    }
    global += "[sources.anon]\nkind = \"maxmind-anonymous\"\npath = \"anon.mmdb\"\nflags = [\"is_anonymous_vpn\", \"is_public_proxy\"]\n\n";
    global += "[sources.asn]\nkind = \"maxmind-asn\"\npath = \"asn.mmdb\"\n\n";
    global += "[sources.country]\nkind = \"maxmind-country\"\npath = \"country.mmdb\"\n\n";
    let lists = [
        "tor", "vpn4", "vpn6", "dc4", "dc6", "big0", "big1", "big2", "big3", "anon",
    ];
    for i in 0..rules {
        let list = lists[i % lists.len()];
        let (verdict, extra) = match i % 4 {
            0 => (
                "require-login",
                "when.account = [\"anonymous\", \"temporary\"]\n".to_owned(),
            ),
            1 => (
                "block",
                format!(
                    "when.account = [\"registered\"]\nwhen.max_edits = {i}\nunless.rights = [\"ipblock-exempt\"]\n"
                ),
            ),
            2 => (
                "block",
                format!("when.ip = [\"10.{}.0.0/16\", \"2001:db8:{i:x}::/48\"]\n", i % 256),
            ),
            _ => (
                "require-login",
                format!("when.asn = [{}]\nwhen.country = [\"IR\", \"CN\"]\n", 64_496 + i),
            ),
        };
        let ip_in = if i % 4 == 2 {
            String::new()
        } else {
            format!("when.ip_in = [\"{list}\"]\n")
        };
        let _ = writeln!(
            global,
            "[[rule]]\nid = \"r{i}\"\nverdict = \"{verdict}\"\n{ip_in}{extra}"
        );
    }
    std::fs::write(dir.join("global.toml"), global)
}

/// Writes `records` records in the shape of Spur's anonymous feed (NDJSON, one IP context a
/// line) to `out`, deterministically from `seed`, with the spread of a real feed: 300
/// operators of VPN, PROXY and TOR tunnels, a few of which carry most addresses; each
/// operator's exits share its risks, services, infrastructure and client kinds (so many
/// addresses share one profile), some records vary that with a second tunnel or an extra risk
/// or behaviour, a tenth have no tunnel (residential proxies); client counts vary per address;
/// a few addresses come twice (as a feed repeats an address across its parts). Addresses are
/// distinct IPv4 addresses in 16.0.0.0/4 in a scrambled order, then a twentieth in IPv6.
/// Returns the addresses written, in order.
pub fn write_spur_feed(out: &mut impl std::io::Write, records: usize, seed: u64) -> std::io::Result<Vec<IpAddr>> {
    const KINDS: [&str; 3] = ["VPN", "PROXY", "TOR"];
    const RISKS: [&str; 6] = [
        "TUNNEL",
        "CALLBACK_PROXY",
        "GEO_MISMATCH",
        "LOGIN_BRUTEFORCE",
        "WEB_SCRAPING",
        "UNKNOWN",
    ];
    const BEHAVIORS: [&str; 4] = ["FILE_SHARING", "TOR_PROXY_USER", "GAMING", "STREAMING"];
    const TYPES: [&str; 3] = ["DESKTOP", "MOBILE", "HEADLESS"];
    const INFRA: [&str; 4] = ["DATACENTER", "RESIDENTIAL", "MOBILE", "BUSINESS"];
    const SERVICES: [&str; 4] = ["OPENVPN", "IPSEC", "WIREGUARD", "PPTP"];
    const COUNTRIES: [&str; 5] = ["US", "DE", "NL", "BR", "IN"];
    struct Operator {
        name: String,
        kind: &'static str,
        risks: Vec<&'static str>,
        services: Vec<&'static str>,
        infra: &'static str,
        types: Vec<&'static str>,
        behaviors: Vec<&'static str>,
    }
    let mut rng = Rng::new(seed);
    let some = |rng: &mut Rng, list: &[&'static str], max: u64| -> Vec<&'static str> {
        let n = 1 + rng.below(max) as usize;
        let mut v: Vec<&'static str> = (0..n).map(|_| list[rng.below(list.len() as u64) as usize]).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let operators: Vec<Operator> = (0..300)
        .map(|i| {
            let kind = KINDS[(i % 10 / 4).min(2)];
            Operator {
                name: format!("OPERATOR_{i:03}_{kind}"),
                kind,
                risks: some(&mut rng, &RISKS, 2),
                services: if kind == "VPN" {
                    some(&mut rng, &SERVICES, 2)
                } else {
                    Vec::new()
                },
                infra: INFRA[rng.below(4) as usize],
                types: some(&mut rng, &TYPES, 2),
                behaviors: some(&mut rng, &BEHAVIORS, 1),
            }
        })
        .collect();
    let mut written = Vec::with_capacity(records);
    let v6_share = records / 20;
    for i in 0..records {
        let ip: IpAddr = if i < records - v6_share {
            // An odd multiplier is a bijection modulo 2^28: distinct addresses in 16.0.0.0/4.
            let x = 0x1000_0000 | ((i as u32).wrapping_mul(0x9E37_79B1) & 0x0FFF_FFFF);
            IpAddr::V4(std::net::Ipv4Addr::from(x))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::new(
                0x2001,
                0xdb8,
                (i >> 16) as u16,
                i as u16,
                0,
                0,
                0,
                1,
            ))
        };
        // Long-tailed: the product of two uniform draws favours the first operators.
        let op = &operators[(rng.below(300) * rng.below(300) / 300) as usize];
        let tunnel = |o: &Operator| serde_json::json!({"operator": o.name, "type": o.kind, "anonymous": true});
        let mut risks = op.risks.clone();
        let mut behaviors = op.behaviors.clone();
        let mut tunnels = vec![tunnel(op)];
        match rng.below(20) {
            0 => tunnels.push(tunnel(&operators[rng.below(300) as usize])),
            1 => risks.push(RISKS[rng.below(6) as usize]),
            2 => behaviors.push(BEHAVIORS[rng.below(4) as usize]),
            3 | 4 => tunnels.clear(),
            _ => {}
        }
        let record = serde_json::json!({
            "ip": ip.to_string(),
            "as": {"number": 64_512 + rng.below(1000), "organization": format!("AS {}", rng.below(1000))},
            "organization": format!("Org {}", rng.below(5000)),
            "infrastructure": if tunnels.is_empty() { "RESIDENTIAL" } else { op.infra },
            "location": {"country": COUNTRIES[rng.below(5) as usize]},
            "client": {
                "behaviors": behaviors,
                "types": op.types,
                "proxies": if tunnels.is_empty() { vec![op.name.clone()] } else { vec![] },
                "count": rng.below(10) * rng.below(10) * rng.below(50),
                "countries": rng.below(20),
                "spread": rng.below(5_000_000),
            },
            "risks": risks,
            "services": op.services,
            "tunnels": tunnels,
        });
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
        written.push(ip);
        // Now and then the same address again, as in a feed's later part.
        if rng.below(200) == 0 {
            writeln!(
                out,
                "{{\"ip\":\"{ip}\",\"risks\":[\"TUNNEL\"],\"client\":{{\"count\":{}}}}}",
                rng.below(100)
            )?;
        }
    }
    Ok(written)
}
