//! Criterion benches for the decision core.
//!
//! - `index/lookup/{10k,1M}`: the prefix index alone, random IPv4/IPv6 probes.
//! - `decide/*`: a snapshot with 1M synthetic prefixes, the real Tor and X4BNet VPN and
//!   datacenter lists, MaxMind's test Anonymous IP, ASN and Country databases, and 100 rules:
//!   `miss` computes the IP facts (index + MaxMind lookups) then decides; `hit` decides from
//!   facts already known (what the server does on a cache hit); `traced` is `miss` plus the
//!   full trace (what `explain` and `editgate test` do).
//! - `load/1M`: reading, parsing and compiling that whole policy directory (what a reload
//!   does); `load/1M-paced` the same with the reload thread's pacing on
//!   (`editgate_core::pace::Cooperative`), which on an idle core measures what the pauses
//!   cost.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use editgate_core::attempt::{AccountKind, Attempt};
use editgate_core::engine::{Trace, decide, decide_with_facts};
use editgate_core::index::IndexBuilder;
use editgate_core::load::{LoadOptions, load, load_dir};
use editgate_core::pace::{Cooperative, Pacer};
use editgate_testkit::synth::{Rng, write_policy};
use ipnet::IpNet;
use jiff::Timestamp;

fn random_nets(n: usize, rng: &mut Rng) -> Vec<IpNet> {
    (0..n).map(|_| rng.net()).collect()
}

fn random_ips(n: usize, rng: &mut Rng) -> Vec<IpAddr> {
    (0..n).map(|_| rng.ip()).collect()
}

fn bench_index(c: &mut Criterion) {
    let mut g = c.benchmark_group("index/lookup");
    for (name, n) in [("10k", 10_000), ("1M", 1_000_000)] {
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
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

fn bench_decide(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    write_policy(dir.path(), &fixtures, 1_000_000, 100, 42).unwrap();
    let now = Timestamp::now();
    let loaded = load_dir(dir.path(), now).unwrap();
    let snap = &loaded.snapshot;
    let mut rng = Rng::new(7);
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
            let mut a = Attempt::builder(*ip).wiki("enwiki").kind(kinds[i % 3]);
            a.account.edit_count = (i % 200) as u64;
            a.build().unwrap()
        })
        .collect();
    let facts: Vec<_> = attempts.iter().map(|a| snap.facts(a.ip())).collect();
    let n = attempts.len();
    per_call_percentiles(snap, &attempts, &facts, now);
    let mut g = c.benchmark_group("decide");
    let mut i = 0;
    g.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            let a = &attempts[i];
            let f = snap.facts(a.ip());
            black_box(decide_with_facts(snap, a, &f, &[], now, Trace::Skip).verdict)
        })
    });
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(decide_with_facts(snap, &attempts[i], &facts[i], &[], now, Trace::Skip).verdict)
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
            black_box(snap.facts(attempts[i].ip()))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("1M", |b| {
        b.iter(|| black_box(load_dir(dir.path(), now).unwrap().snapshot.version().len()))
    });
    g.bench_function("1M-paced", |b| {
        b.iter(|| {
            let mut cooperative = Cooperative::default();
            let mut pause = || cooperative.pause();
            let options = LoadOptions {
                now,
                previous: None,
                pacer: Pacer::with(&mut pause),
            };
            black_box(load(dir.path(), options).unwrap().snapshot.version().len())
        })
    });
    g.finish();
}

/// Criterion reports per-call means of batches; the targets are per-call p99s. Time
/// each call on its own with `Instant` (whose own cost, ~20-30 ns here, is included, so the
/// figures err high) and print the percentiles.
fn per_call_percentiles(
    snap: &editgate_core::engine::Snapshot,
    attempts: &[Attempt],
    facts: &[editgate_core::engine::Facts],
    now: Timestamp,
) {
    use std::time::Instant;
    let n = attempts.len();
    let run = |name: &str, miss: bool| {
        let mut lat: Vec<u32> = Vec::with_capacity(400_000);
        for round in 0..400_000usize {
            let i = (round * 7) % n;
            let a = &attempts[i];
            let t0 = Instant::now();
            let f = if miss { snap.facts(a.ip()) } else { facts[i] };
            black_box(decide_with_facts(snap, a, &f, &[], now, Trace::Skip).verdict);
            lat.push(t0.elapsed().as_nanos() as u32);
        }
        lat.sort_unstable();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
        println!(
            "per-call {name}: p50 {} ns, p99 {} ns, p99.9 {} ns (Instant overhead included)",
            p(0.5),
            p(0.99),
            p(0.999)
        );
    };
    // The clock's own cost, to read the figures above against.
    let mut lat: Vec<u32> = (0..400_000)
        .map(|_| {
            let t0 = Instant::now();
            black_box(0);
            t0.elapsed().as_nanos() as u32
        })
        .collect();
    lat.sort_unstable();
    println!(
        "per-call clock alone: p50 {} ns, p99 {} ns",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
    run("decide/hit", false);
    run("decide/miss", true);
    if std::env::var_os("EDITGATE_TAIL").is_some() {
        let mut per: Vec<(u32, usize)> = (0..n)
            .map(|i| {
                let mut v: Vec<u32> = (0..51)
                    .map(|_| {
                        let t0 = Instant::now();
                        black_box(decide_with_facts(snap, &attempts[i], &facts[i], &[], now, Trace::Skip).verdict);
                        t0.elapsed().as_nanos() as u32
                    })
                    .collect();
                v.sort_unstable();
                (v[25], i)
            })
            .collect();
        per.sort_unstable();
        for (t, i) in per.iter().rev().take(12) {
            let d = decide_with_facts(snap, &attempts[*i], &facts[*i], &[], now, Trace::Skip);
            println!(
                "slow: {t} ns {} {:?} {:?} rule={}",
                attempts[*i].ip(),
                attempts[*i].account().kind,
                facts[*i],
                d.rule_id
            );
        }
        println!("median of medians {} ns; 99th {} ns", per[n / 2].0, per[n * 99 / 100].0);
    }
}

criterion_group!(benches, bench_index, bench_decide);
criterion_main!(benches);
