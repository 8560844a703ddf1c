//! One `Attempt` for every entry point, odd wiki ids, error quality, anonymous means no account.

use editgate::proto::AccountKind;
use editgate::server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TOR_EXIT, copy_dir, editgate, policy_dir, shipped_copy, shipped_policies, validate, write};
use crate::server::{Running, check, http_post, req};

// --- One Attempt for every entry point; odd wiki ids ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_point_normalizes_wiki_ids_alike() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    // A registered, young account on Tor: enwiki's own rule decides, on enwiki only.
    let age = "2d";
    for wiki in ["enwiki", "EnWiki", " ENWIKI "] {
        let mut r = req(TOR_EXIT, wiki, AccountKind::Registered);
        r.account.as_mut().unwrap().registered_at = Some(pbjson_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second() - 2 * 86_400,
            nanos: 0,
        });
        let grpc = check(&mut c, r).await.rule_id;
        let json = format!(
            r#"{{"ip":"{TOR_EXIT}","wiki":{wiki:?},"action":"EDIT","account":{{"kind":"ACCOUNT_KIND_REGISTERED","registeredAt":"{}"}}}}"#,
            jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48)
        );
        let (_, body) = http_post(srv.http, "/v1/check", &json).await;
        let http: serde_json::Value = serde_json::from_str(&body).unwrap();
        let cli = editgate()
            .args([
                "check",
                "--json",
                "--ip",
                TOR_EXIT,
                "--account",
                "registered",
                "--age",
                age,
                "--action",
                "EDIT",
                "--wiki",
                wiki,
                "--policies",
            ])
            .arg(shipped_policies())
            .output()
            .unwrap();
        let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap_or_else(|_| panic!("{cli:?}"));
        let cases = tempfile::tempdir().unwrap();
        copy_dir(&shipped_policies(), cases.path());
        std::fs::remove_dir_all(cases.path().join("tests")).unwrap();
        write(
            cases.path(),
            "tests/t.toml",
            &format!(
                "[[case]]\nname = \"odd case\"\nrequest = {{ ip = \"{TOR_EXIT}\", wiki = {wiki:?}, action = \"EDIT\", account = \"registered\", age = \"{age}\" }}\nexpect = {{ verdict = \"block\", rule = \"enwiki-tor-young-account\" }}\n"
            ),
        );
        let test = editgate().arg("test").arg(cases.path()).output().unwrap();
        // Replay against the policy without enwiki's file: the attempt moves from enwiki's
        // rule to the global one, which shows the wiki id was read as enwiki.
        let replay_in = cases.path().join("attempts.jsonl");
        std::fs::write(&replay_in, &json).unwrap();
        std::fs::remove_file(cases.path().join("wikis/enwiki.toml")).unwrap();
        std::fs::remove_dir_all(cases.path().join("tests")).unwrap();
        let replay = editgate()
            .args(["replay", "--json", "--policies"])
            .arg(shipped_policies())
            .arg("--against")
            .arg(cases.path())
            .arg("--attempts")
            .arg(&replay_in)
            .output()
            .unwrap();
        let replay: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap_or_else(|_| panic!("{replay:?}"));
        let moved = replay["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule_id"] == "enwiki-tor-young-account" && r["old"] == 1 && r["new"] == 0);
        assert_eq!(grpc, "enwiki-tor-young-account", "{wiki:?}");
        assert_eq!(http["ruleId"], "enwiki-tor-young-account", "{wiki:?}: {body}");
        assert_eq!(cli["rule_id"], "enwiki-tor-young-account", "{wiki:?}");
        assert!(
            test.status.success(),
            "{wiki:?}: {}",
            String::from_utf8_lossy(&test.stdout)
        );
        assert!(moved, "{wiki:?}: {replay}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiki_id_outside_the_charset_is_refused_everywhere() {
    let srv = Running::start(&shipped_policies()).await;
    let odd = "ｏfficewiki";
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        &format!(r#"{{"ip":"9.9.9.9","wiki":"{odd}","account":{{"kind":"ACCOUNT_KIND_ANONYMOUS"}}}}"#),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("\"code\":\"InvalidArgument\"") && body.contains("wiki:"),
        "{body}"
    );
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"9.9.9.9","wiki":"officewiki\u0000","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let cli = editgate()
        .args(["check", "--ip", "9.9.9.9", "--wiki", odd, "--policies"])
        .arg(shipped_policies())
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("--wiki: `ｏfficewiki` is not a wiki id"),
        "{cli:?}"
    );
    let cases = tempfile::tempdir().unwrap();
    copy_dir(&shipped_policies(), cases.path());
    write(
        cases.path(),
        "tests/odd.toml",
        &format!(
            "[[case]]\nname = \"odd\"\nrequest = {{ ip = \"9.9.9.9\", wiki = \"{odd}\" }}\nexpect = {{ verdict = \"block\" }}\n"
        ),
    );
    let test = editgate().arg("test").arg(cases.path()).output().unwrap();
    assert_eq!(test.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&test.stderr).contains("tests/odd.toml:3:11: error: request: wiki:"),
        "{test:?}"
    );
}

#[test]
fn wiki_files_with_odd_names_are_errors_not_skipped() {
    let dir = shipped_copy();
    std::fs::rename(
        dir.path().join("wikis/officewiki.toml"),
        dir.path().join("wikis/officewiki.TOML"),
    )
    .unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wikis/officewiki.TOML: error: not a wiki file"), "{out}");
    std::fs::rename(
        dir.path().join("wikis/officewiki.TOML"),
        dir.path().join("wikis/officewiki.toml"),
    )
    .unwrap();
    // Editors' swap and backup files are left alone.
    write(dir.path(), "wikis/.enwiki.toml.swp", "binary junk \u{1}");
    write(dir.path(), "wikis/enwiki.toml~", "old copy");
    assert_eq!(validate(dir.path()).0, 0);
    // A name that is not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"de\xffwiki.toml");
    std::fs::write(dir.path().join("wikis").join(bad), "").unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not valid UTF-8"), "{out}");
}

// --- Error quality -------------------------------------------------------------------------------

#[test]
fn a_broken_global_toml_is_reported_once_not_as_unknown_sources_in_wiki_files() {
    let dir = shipped_copy();
    let global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    write(
        dir.path(),
        "global.toml",
        &format!("{global}\n[[rule]\nid = \"oops\"\n"),
    );
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches(": error:").count(), 1, "{out}");
    assert!(!out.contains("unknown source"), "{out}");
}

#[test]
fn positions_and_words_for_hard_inputs() {
    let deep = format!("[settings]\n{}b = 1\n", "a.".repeat(100));
    let dir = policy_dir(&[("global.toml", &deep)]);
    let (_, out) = validate(dir.path());
    assert!(
        out.contains("global.toml:2:1: error: a dotted key of 80 or more parts"),
        "{out}"
    );

    let dir = policy_dir(&[(
        "global.toml",
        "[[rule]]\nid = \"r\"\nverdict = \"allow\"\nexpires = 9999-12-31T23:59:59Z\n",
    )]);
    let (_, out) = validate(dir.path());
    assert!(
        out.contains("is outside the times editgate handles") && !out.contains("253402"),
        "{out}"
    );

    let dir = shipped_copy();
    std::fs::write(
        dir.path().join("lists/hard-blocks.txt"),
        b"192.0.2.0/24\n2001:db8:\xff::/48\n",
    )
    .unwrap();
    let (_, out) = validate(dir.path());
    assert!(
        out.contains("lists/hard-blocks.txt:2:10:") && out.contains("not a text file"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_json_and_malformed_protobuf_is_invalid_argument() {
    let mut s = Config::new(shipped_policies());
    s.watch = false;
    s.max_message_bytes = 2048;
    let srv = Running::start_with(s).await;
    let big = format!(r#"{{"ip":"9.9.9.9","requestId":"{}"}}"#, "x".repeat(5000));
    let (code, body) = http_post(srv.http, "/v1/check", &big).await;
    assert_eq!(code, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
        "OutOfRange"
    );

    let mut conn = tokio::net::TcpStream::connect(srv.http).await.unwrap();
    conn.write_all(b"POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .await
        .unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 415"), "{out}");
    assert!(
        out.contains("application/json") && out.contains("Content-Encoding `gzip`"),
        "{out}"
    );

    // Bytes that are no CheckRequest, through a real gRPC client.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", srv.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let err = grpc
        .unary::<Vec<u8>, Vec<u8>, RawCodec>(
            tonic::Request::new(vec![0x0a, 0xff, 0xff, 0xff]),
            http::uri::PathAndQuery::from_static("/editgate.v1.EditGate/Check"),
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("malformed protobuf"), "{err:?}");
}

/// A gRPC codec that sends and receives raw bytes, to send what no generated client would.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

// --- Anonymous means no account ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_requests_registration_time_never_counts() {
    let global = "[[rule]]\nid = \"young\"\nverdict = \"block\"\nwhen.max_age = \"1d\"\n";
    let dir = policy_dir(&[("global.toml", global)]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    let srv = Running::start_with(s).await;
    let (_, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"9.9.9.9","account":{"kind":"ACCOUNT_KIND_ANONYMOUS","registeredAt":"2026-11-01T00:00:00Z","editCount":"500"}}"#,
    )
    .await;
    assert!(body.contains("\"ruleId\":\"young\""), "{body}");
    let cli = editgate()
        .args([
            "check",
            "--json",
            "--ip",
            "9.9.9.9",
            "--account",
            "anonymous",
            "--age",
            "10d",
            "--policies",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains("\"rule_id\":\"young\""),
        "{cli:?}"
    );
}
