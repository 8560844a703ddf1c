//! Property test: the range index gives the same label sets as a linear scan.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use editgate_core::index::{IndexBuilder, Label};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

fn v4_net() -> impl Strategy<Value = IpNet> {
    // Short prefixes in a narrow space so networks overlap often.
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, len)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a & 0xC0FF_FFFF), len).unwrap().trunc()))
}

fn v6_net() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128).prop_map(|(a, len)| {
        let a = a & !(0x3FFF_u128 << 112); // cluster the top bits
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc())
    })
}

fn naive(nets: &[(IpNet, Label)], ip: IpAddr) -> Vec<Label> {
    let mut out: Vec<Label> = nets.iter().filter(|(n, _)| n.contains(&ip)).map(|(_, l)| *l).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Addresses at and around each network's edges, where an off-by-one would show.
fn edges(nets: &[(IpNet, Label)]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (n, _) in nets {
        match n {
            IpNet::V4(n) => {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                for x in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    out.push(IpAddr::V4(x.into()));
                }
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                for x in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    out.push(IpAddr::V6(x.into()));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn index_agrees_with_linear_scan(
        nets in prop::collection::vec((prop_oneof![v4_net(), v6_net()], 0u32..70), 0..60),
        probes in prop::collection::vec(prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4((a & 0xC0FF_FFFF).into())),
            any::<u128>().prop_map(|a| IpAddr::V6((a & !(0x3FFF_u128 << 112)).into())),
        ], 0..40),
    ) {
        let mut b = IndexBuilder::new();
        for (n, l) in &nets {
            b.add(*n, *l);
        }
        let idx = b.build();
        for ip in probes.into_iter().chain(edges(&nets)) {
            prop_assert_eq!(idx.labels(idx.lookup(ip)), naive(&nets, ip), "ip {}", ip);
        }
    }
}
