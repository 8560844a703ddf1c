//! Criterion benches for the decision core.
//!
//! - `index/lookup/{10k,1M}`: the prefix index alone, random IPv4/IPv6 probes.
//! - `decide/*`: a snapshot with 1M synthetic prefixes, the real Tor and X4BNet VPN and
//!   datacenter lists, MaxMind's test Anonymous IP, ASN and Country databases, and 100 rules:
//!   `miss` computes the IP facts (index + MaxMind lookups) then decides; `hit` decides from
//!   facts already known (what the server does on a cache hit); `traced` is `miss` plus the
//!   full trace (what `explain` and `editgate test` do).
#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use editgate::attempt::{AccountKind, Attempt};
use editgate::engine::{decide, decide_with_facts};
use editgate::index::IndexBuilder;
use editgate::load::load_dir;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use jiff::Timestamp;

/// xorshift64*: a deterministic generator, so every run benches the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn random_nets(n: usize, rng: &mut Rng) -> Vec<IpNet> {
    (0..n)
        .map(|i| {
            if i % 5 == 4 {
                let a = (u128::from(rng.next()) << 64 | u128::from(rng.next())) & !(0xE000_u128 << 112)
                    | (0x2000_u128 << 112);
                IpNet::V6(
                    Ipv6Net::new(Ipv6Addr::from(a), 32 + (rng.next() % 33) as u8)
                        .unwrap()
                        .trunc(),
                )
            } else {
                IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(rng.next() as u32), 16 + (rng.next() % 17) as u8)
                        .unwrap()
                        .trunc(),
                )
            }
        })
        .collect()
}

fn random_ips(n: usize, rng: &mut Rng) -> Vec<IpAddr> {
    (0..n)
        .map(|i| {
            if i % 5 == 4 {
                IpAddr::V6(Ipv6Addr::from(
                    (u128::from(rng.next()) << 64 | u128::from(rng.next())) & !(0xE000_u128 << 112)
                        | (0x2000_u128 << 112),
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            }
        })
        .collect()
}

fn bench_index(c: &mut Criterion) {
    let mut g = c.benchmark_group("index/lookup");
    for (name, n) in [("10k", 10_000), ("1M", 1_000_000)] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut b = IndexBuilder::new();
        for (i, net) in random_nets(n, &mut rng).into_iter().enumerate() {
            b.add(net, (i % 8) as u32);
        }
        let idx = b.build();
        let ips = random_ips(4096, &mut rng);
        let mut i = 0;
        g.bench_function(name, |bch| {
            bch.iter(|| {
                i = (i + 1) & 4095;
                black_box(idx.lookup(black_box(ips[i])))
            })
        });
    }
    g.finish();
}

/// Writes the bench policy: 1M prefixes in 4 lists, real lists, MaxMind, 100 rules.
fn write_policy(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fx = root.join("tests/fixtures");
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
        std::fs::copy(fx.join(from), dir.join(to)).unwrap();
    }
    let mut rng = Rng(42);
    let mut global = String::from("[settings]\ndefault = \"allow\"\n\n");
    for (name, kind, path) in [
        ("tor", "tor-exits", "tor.txt"),
        ("vpn4", "ip-list", "vpn4.txt"),
        ("vpn6", "ip-list", "vpn6.txt"),
        ("dc4", "ip-list", "dc4.txt"),
        ("dc6", "ip-list", "dc6.txt"),
    ] {
        writeln!(global, "[sources.{name}]\nkind = \"{kind}\"\npath = \"{path}\"\n").unwrap();
    }
    for b in 0..4 {
        let mut text = String::new();
        for n in random_nets(250_000, &mut rng) {
            writeln!(text, "{n}").unwrap();
        }
        std::fs::write(dir.join(format!("big{b}.txt")), text).unwrap();
        writeln!(global, "[sources.big{b}]\nkind = \"ip-list\"\npath = \"big{b}.txt\"\n").unwrap();
    }
    global += "[sources.anon]\nkind = \"maxmind-anonymous\"\npath = \"anon.mmdb\"\nflags = [\"is_anonymous_vpn\", \"is_public_proxy\"]\n\n";
    global += "[sources.asn]\nkind = \"maxmind-asn\"\npath = \"asn.mmdb\"\n\n[sources.country]\nkind = \"maxmind-country\"\npath = \"country.mmdb\"\n\n";
    let lists = [
        "tor", "vpn4", "vpn6", "dc4", "dc6", "big0", "big1", "big2", "big3", "anon",
    ];
    for i in 0..100 {
        let list = lists[i % lists.len()];
        let (verdict, extra) = match i % 4 {
            0 => (
                "require-login",
                "when.account = [\"anonymous\", \"temporary\"]\n".to_owned(),
            ),
            1 => (
                "block",
                format!(
                    "when.account = [\"registered\"]\nwhen.max_edits = {}\nunless.rights = [\"ipblock-exempt\"]\n",
                    i
                ),
            ),
            2 => (
                "block",
                format!("when.ip = [\"10.{i}.0.0/16\", \"2001:db8:{i:x}::/48\"]\n"),
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
        writeln!(
            global,
            "[[rule]]\nid = \"r{i}\"\nverdict = \"{verdict}\"\n{ip_in}{extra}"
        )
        .unwrap();
    }
    std::fs::write(dir.join("global.toml"), global).unwrap();
}

fn bench_decide(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path());
    let now = Timestamp::now();
    let loaded = load_dir(dir.path(), now).unwrap();
    let snap = &loaded.snapshot;
    let mut rng = Rng(7);
    // A realistic mix: random addresses, plus Tor exits and MaxMind-flagged ones.
    let mut ips = random_ips(4000, &mut rng);
    ips.extend(
        [
            "162.247.74.201",
            "199.249.223.62",
            "1.2.0.1",
            "186.30.236.5",
            "81.2.69.160",
        ]
        .map(|s| s.parse::<IpAddr>().unwrap()),
    );
    let kinds = [AccountKind::Anonymous, AccountKind::Temporary, AccountKind::Registered];
    let attempts: Vec<Attempt> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let mut a = Attempt::anonymous_edit(*ip);
            a.wiki = "enwiki".into();
            a.account.kind = kinds[i % 3];
            a.account.edit_count = (i % 200) as u64;
            a
        })
        .collect();
    let facts: Vec<_> = attempts.iter().map(|a| snap.facts(a.ip)).collect();
    let n = attempts.len();
    let mut g = c.benchmark_group("decide");
    let mut i = 0;
    g.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            let a = &attempts[i];
            let f = snap.facts(a.ip);
            black_box(decide_with_facts(snap, a, &f, &[], now, false).verdict)
        })
    });
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(decide_with_facts(snap, &attempts[i], &facts[i], &[], now, false).verdict)
        })
    });
    g.bench_function("traced", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(decide(snap, &attempts[i], now).trace.len())
        })
    });
    g.bench_function("facts", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(snap.facts(attempts[i].ip))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_index, bench_decide);
criterion_main!(benches);
