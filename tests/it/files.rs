//! Settings out of range, special and huge files, host bits, lints.

use std::path::Path;
use std::time::Duration;

use editgate::server::Config;

use crate::common::{editgate, policy_dir, shipped_copy, shipped_policies, validate, write};
use crate::server::Running;
use crate::sources::{SHRINK_GLOBAL, blocks_policy};

// --- Config out of range ----------------------------------------------------------------

#[test]
fn settings_out_of_range_are_refused_naming_the_setting() {
    let dir = shipped_policies();
    let config = tempfile::tempdir().unwrap();
    write(config.path(), "editgate.toml", "cache_ttl = \"366000d\"\n");
    /// Flags, environment, what stderr must say.
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--cache-ttl".into(), "366000d".into()],
            vec![],
            "cache_ttl: `366000d` is out of range",
        ),
        (vec![], vec![("EDITGATE_CACHE_TTL", "366000d")], "cache_ttl"),
        (
            vec![
                "--config".into(),
                config.path().join("editgate.toml").display().to_string(),
            ],
            vec![],
            "cache_ttl",
        ),
        (
            vec!["--max-message-bytes".into(), "0".into()],
            vec![],
            "max_message_bytes: 0 is out of range",
        ),
        (vec!["--request-timeout".into(), "2h".into()], vec![], "request_timeout"),
        (vec!["--drain-timeout".into(), "1y".into()], vec![], "drain_timeout"),
        (vec!["--header-timeout".into(), "0s".into()], vec![], "header_timeout"),
    ];
    for (args, env, want) in cases {
        let out = editgate()
            .args(crate::common::SERVE_LOOPBACK)
            .arg("--policies")
            .arg(&dir)
            .args(&args)
            .envs(env.iter().copied())
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

// --- Special and huge files ---------------------------------------------------------------

#[test]
fn a_fifo_or_a_device_in_place_of_a_list_is_refused_at_once() {
    for (what, make) in [
        (
            "a FIFO",
            (|p: &Path| {
                assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success());
            }) as fn(&Path),
        ),
        ("a link to /dev/zero", |p: &Path| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
        ("a directory", |p: &Path| std::fs::create_dir(p).unwrap()),
    ] {
        let dir = shipped_copy();
        let list = dir.path().join("lists/vpn.txt");
        std::fs::remove_file(&list).unwrap();
        make(&list);
        let (code, out) = validate(dir.path());
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("lists/vpn.txt"), "{what}: {out}");
    }
}

#[test]
fn a_list_larger_than_max_bytes_is_refused() {
    let dir = shipped_copy();
    let global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    write(
        dir.path(),
        "global.toml",
        &global.replace("path = \"lists/vpn.txt\"", "path = \"lists/vpn.txt\"\nmax_bytes = 1000"),
    );
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("larger than the 1000 bytes allowed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_does_not_wedge_reloads() {
    let dir = policy_dir(&[("global.toml", SHRINK_GLOBAL), ("blocks.txt", &blocks_policy(10))]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    let srv = Running::start_with(s).await;
    std::fs::remove_file(dir.path().join("blocks.txt")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(dir.path().join("blocks.txt"))
            .status()
            .unwrap()
            .success()
    );
    let err = tokio::time::timeout(Duration::from_secs(20), srv.state.reload())
        .await
        .expect("the reload returns")
        .expect_err("a FIFO is not a list")
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_file(dir.path().join("blocks.txt")).unwrap();
    write(dir.path(), "blocks.txt", &blocks_policy(11));
    srv.state.reload().await.expect("reloads work again");
}

// --- Host bits ---------------------------------------------------------------------------------

#[test]
fn host_bits_are_errors_in_rules_and_lists_unless_masking_is_asked_for() {
    let dir = policy_dir(&[(
        "global.toml",
        "[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip = [\"198.51.100.0/24\", \"203.0.113.4/24\"]\n",
    )]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("global.toml:4:31: error: `203.0.113.4/24` has host bits set: as a network it is `203.0.113.0/24` (256 addresses)"), "{out}");

    let dir = shipped_copy();
    std::fs::write(
        dir.path().join("lists/hard-blocks.txt"),
        "192.0.2.0/24\n203.0.113.4/24\n",
    )
    .unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("lists/hard-blocks.txt:2:1:") && out.contains("mask_host_bits"),
        "{out}"
    );
    let global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    write(
        dir.path(),
        "global.toml",
        &global.replace(
            "path = \"lists/hard-blocks.txt\"",
            "path = \"lists/hard-blocks.txt\"\nmask_host_bits = true",
        ),
    );
    assert_eq!(validate(dir.path()).0, 0);

    let dir = policy_dir(&[(
        "global.toml",
        "[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip = [\"010.0.0.0/8\"]\n",
    )]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("`010.0.0.0/8` is not an IP address or CIDR network"),
        "{out}"
    );
}

// --- Lints -----------------------------------------------------------------------------------

#[test]
fn empty_groups_rights_and_unless_tables_are_flagged() {
    for (table, want) in [
        ("when.groups = []", "`groups = []` holds for nothing"),
        ("when.rights = []", "`rights = []` holds for nothing"),
        ("unless = {}", "an empty `unless` table always holds"),
    ] {
        let dir = policy_dir(&[(
            "global.toml",
            &format!("[[rule]]\nid = \"r\"\nverdict = \"block\"\n{table}\n"),
        )]);
        let (code, out) = validate(dir.path());
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("warning[impossible-condition]") && out.contains(want),
            "{table}: {out}"
        );
    }
}
