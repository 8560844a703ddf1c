//! Peer comparison: editgate's `decide` against Cedar running equivalent rules, and
//! against a naive linear `ipnet` scan, at N = 10, 1,000 and 10,000 ranges.
//!
//! Equivalent rules: N forbid rules, each "anonymous account from this range", then allow.
//! - Cedar: `forbid (principal, action, resource) when { context.ip.isInRange(ip("R")) &&
//!   context.account == "anonymous" };` plus `permit (principal, action, resource);`. The
//!   request is built once per address (not timed): only `is_authorized` is measured.
//! - editgate: the same N rules as `[[rule]]`s with `when.ip = ["R"]` and
//!   `when.account = ["anonymous"]`; timed: computing the IP facts plus `decide` (the cache-miss
//!   path of the server).
//! - naive: a `Vec<IpNet>` scanned in order, then the account test.
//!
//! Run with `cargo bench --features peers --bench peers`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::IpAddr;
use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, RestrictedExpression};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use editgate_core::attempt::{AccountKind, Attempt};
use editgate_core::decision::Verdict;
use editgate_core::engine::{Trace, decide_with_facts};
use editgate_core::load::load_dir;
use editgate_testkit::synth::Rng;
use ipnet::IpNet;
use jiff::Timestamp;

fn ranges(n: usize) -> Vec<IpNet> {
    let mut rng = Rng::new(11);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if let IpNet::V4(net) = rng.net() {
            out.push(IpNet::V4(net));
        }
    }
    out
}

/// Probe addresses: half inside a random range (hits), half random (mostly misses).
fn probes(nets: &[IpNet]) -> Vec<IpAddr> {
    let mut rng = Rng::new(5);
    (0..256)
        .map(|i| {
            if i % 2 == 0 {
                let net = nets[rng.below(nets.len() as u64) as usize];
                rng.ip_in(&net)
            } else {
                IpAddr::V4((rng.next_u64() as u32).into())
            }
        })
        .collect()
}

fn cedar_request(ip: IpAddr) -> Request {
    let ctx = Context::from_pairs([
        ("ip".to_owned(), RestrictedExpression::new_ip(ip.to_string())),
        (
            "account".to_owned(),
            RestrictedExpression::new_string("anonymous".to_owned()),
        ),
    ])
    .unwrap();
    Request::new(
        EntityUid::from_str(r#"User::"anon""#).unwrap(),
        EntityUid::from_str(r#"Action::"edit""#).unwrap(),
        EntityUid::from_str(r#"Wiki::"enwiki""#).unwrap(),
        ctx,
        None,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers");
    for n in [10usize, 1_000, 10_000] {
        let nets = ranges(n);
        let ips = probes(&nets);

        // Cedar
        let mut text = String::new();
        for net in &nets {
            let _ = writeln!(
                text,
                "forbid (principal, action, resource) when {{ context.ip.isInRange(ip(\"{net}\")) && context.account == \"anonymous\" }};"
            );
        }
        text += "permit (principal, action, resource);\n";
        let policies = PolicySet::from_str(&text).unwrap();
        let auth = Authorizer::new();
        let entities = Entities::empty();
        let requests: Vec<Request> = ips.iter().map(|ip| cedar_request(*ip)).collect();

        // editgate
        let dir = tempfile::tempdir().unwrap();
        let mut global = String::from("[settings]\ndefault = \"allow\"\n\n");
        for (i, net) in nets.iter().enumerate() {
            let _ = writeln!(
                global,
                "[[rule]]\nid = \"r{i}\"\nverdict = \"block\"\nwhen.ip = [\"{net}\"]\nwhen.account = [\"anonymous\"]\n"
            );
        }
        std::fs::write(dir.path().join("global.toml"), global).unwrap();
        let now = Timestamp::now();
        let snap = load_dir(dir.path(), now).unwrap().snapshot;
        let attempts: Vec<Attempt> = ips.iter().map(|ip| Attempt::anonymous_edit(*ip)).collect();

        // The three must agree before they are timed.
        for (i, a) in attempts.iter().enumerate() {
            let e = decide_with_facts(&snap, a, &snap.facts(a.ip()), &[], now, Trace::Skip).verdict == Verdict::Block;
            let ce = auth.is_authorized(&requests[i], &policies, &entities).decision() == Decision::Deny;
            let nv = nets.iter().any(|n| n.contains(&a.ip()));
            assert_eq!((e, ce), (nv, nv), "{}", a.ip());
        }

        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("editgate", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) & 255;
                let a = &attempts[i];
                black_box(decide_with_facts(&snap, a, &snap.facts(a.ip()), &[], now, Trace::Skip).verdict)
            })
        });
        g.bench_with_input(BenchmarkId::new("naive-ipnet-scan", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) & 255;
                let ip = ips[i];
                black_box(
                    nets.iter().any(|net| net.contains(&ip)) && attempts[i].account().kind == AccountKind::Anonymous,
                )
            })
        });
        g.sample_size(if n >= 10_000 { 10 } else { 50 });
        g.bench_with_input(BenchmarkId::new("cedar", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) & 255;
                black_box(auth.is_authorized(&requests[i], &policies, &entities).decision())
            })
        });
        g.sample_size(100);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
