//! Data freshness as shipped and in production. The shipped snapshot reports its real age;
//! the production example (`examples/production/policies`): its files validate as CI checks
//! them, and with its data paths moved into a temporary root it loads with its `url` sources
//! awaiting their first fetch, which `validate` accepts with a note and `serve` reports as
//! `starting`.

use std::path::{Path, PathBuf};

use crate::common::{editgate, fixture, policy_dir};
use crate::server::{Running, healthz};

fn production() -> PathBuf {
    crate::common::repo().join("examples/production/policies")
}

#[test]
fn the_production_policy_files_validate_without_their_data() {
    let stdout = crate::common::validate_files(&production());
    assert!(
        stdout.contains("policy files valid (data not read): 12 rules, 8 sources, 2 wiki files, 0 warnings"),
        "{stdout}"
    );
    // The full check needs the MaxMind database at geoipupdate's path, which CI lacks.
    let out = editgate().arg("validate").arg(production()).assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("/var/lib/GeoIP/GeoIP2-Anonymous-IP.mmdb"), "{stderr}");
}

/// A copy of the production policy whose absolute data paths point into `root`: MaxMind's
/// test database for geoipupdate's, `root/sources/` for the state directory.
fn rooted_copy(root: &Path) -> tempfile::TempDir {
    let global = std::fs::read_to_string(production().join("global.toml"))
        .unwrap()
        .replace(
            "/var/lib/GeoIP/GeoIP2-Anonymous-IP.mmdb",
            &fixture("maxmind/GeoIP2-Anonymous-IP-Test.mmdb").display().to_string(),
        )
        .replace(
            "/var/lib/editgate/sources/",
            &format!("{}/", root.join("sources").display()),
        );
    let wiki = |name: &str| std::fs::read_to_string(production().join("wikis").join(name)).unwrap();
    let hard = std::fs::read_to_string(production().join("lists/hard-blocks.txt")).unwrap();
    policy_dir(&[
        ("global.toml", &global),
        ("wikis/enwiki.toml", &wiki("enwiki.toml")),
        ("wikis/officewiki.toml", &wiki("officewiki.toml")),
        ("lists/hard-blocks.txt", &hard),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_policy_waits_for_its_live_sources() {
    let root = tempfile::tempdir().unwrap();
    let dir = rooted_copy(root.path());
    // The X4BNet lists were fetched before (the test's copies of them); Tor was not.
    std::fs::create_dir_all(root.path().join("sources")).unwrap();
    for (from, to) in [
        ("iplists/x4bnet-vpn-ipv4.txt", "x4bnet-vpn-ipv4.txt"),
        ("iplists/x4bnet-vpn-ipv6.txt", "x4bnet-vpn-ipv6.txt"),
        ("iplists/x4bnet-datacenter-ipv4.txt", "x4bnet-datacenter-ipv4.txt"),
        ("iplists/x4bnet-datacenter-ipv6.txt", "x4bnet-datacenter-ipv6.txt"),
    ] {
        std::fs::copy(fixture(from), root.path().join("sources").join(to)).unwrap();
    }

    let out = editgate()
        .args(["validate", "--deny-warnings"])
        .arg(dir.path())
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for awaiting in ["tor", "tor-onionoo"] {
        assert!(
            stderr.contains(&format!("note: source `{awaiting}` has no copy yet")),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("`vpn-v4` has no copy"), "{stderr}");

    let srv = Running::start(dir.path()).await;
    let (code, health) = healthz(srv.http).await;
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["status"], "starting");
    let problems = health["problems"].to_string();
    assert!(
        problems.contains("`tor`") && problems.contains("`tor-onionoo`"),
        "{problems}"
    );
    let vpn = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "vpn-v4")
        .unwrap();
    assert!(vpn["entries"].as_u64().unwrap() > 5000, "{vpn}");
}

#[test]
fn validate_no_data_checks_the_files_and_reads_no_data() {
    // A data file that does not exist: only a full validate needs it.
    let dir = policy_dir(&[(
        "global.toml",
        "[sources.vpn]\nkind = \"ip-list\"\npath = \"nowhere/vpn.txt\"\nmin_entries = 1\n\n[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip_in = [\"vpn\"]\n",
    )]);
    editgate()
        .args(["validate", "--no-data"])
        .arg(dir.path())
        .assert()
        .success();
    editgate().arg("validate").arg(dir.path()).assert().code(1);

    // Errors in the files keep their positions; warnings still count with --deny-warnings.
    let broken = policy_dir(&[("global.toml", "[[rule]]\nid = \"r\"\nverdict = \"blok\"\n")]);
    let out = editgate()
        .args(["validate", "--no-data"])
        .arg(broken.path())
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("global.toml:3:11: error: unknown verdict `blok`"),
        "{stderr}"
    );
    let unused = policy_dir(&[(
        "global.toml",
        "[sources.vpn]\nkind = \"ip-list\"\npath = \"vpn.txt\"\nmin_entries = 1\n",
    )]);
    editgate()
        .args(["validate", "--no-data", "--deny-warnings"])
        .arg(unused.path())
        .assert()
        .code(1);
    editgate()
        .args(["validate", "--no-data"])
        .arg(Path::new("/nonexistent/editgate"))
        .assert()
        .code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_the_shipped_snapshots_real_age() {
    let srv = Running::start(&crate::common::shipped_policies()).await;
    let (code, health) = healthz(srv.http).await;
    assert_eq!(code, 200);
    assert_eq!(
        health["status"], "degraded",
        "an offline snapshot from 2018 is not fresh"
    );
    let source = |name: &str| {
        health["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    let tor = source("tor");
    assert_eq!(tor["data_time"], "2018-10-11T21:03:42Z", "{tor}");
    assert_eq!(tor["data_time_from"], "data");
    assert!(
        tor["data_age_seconds"].as_f64().unwrap() > 7.0 * 365.0 * 86_400.0,
        "{tor}"
    );
    assert_eq!(tor["stale"], true);
    let maxmind = source("anonymizers");
    assert_eq!(maxmind["data_time_from"], "data", "{maxmind}");
    assert!(maxmind["data_time_detail"].as_str().unwrap().contains("build_epoch"));
    // A plain list has no time of its own: its file's modification time, and it says so.
    assert_eq!(source("vpn")["data_time_from"], "file-modified");
}
