//! TLS and mutual TLS on both ports; unusable TLS files and a key others can read keep `serve`
//! from starting.

use std::net::SocketAddr;
use std::time::Duration;

use editgate::proto::edit_gate_client::EditGateClient;
use editgate::proto::{AccountKind, Verdict};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::common::{policy_dir, settings, shipped_policies, write};
use crate::server::{Running, check, req};

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client: Identity,
    client_pem: (String, String),
    rogue: Identity,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>, issuer: &rcgen::Issuer<'_, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], &ca);
    let client_pem = leaf(vec!["wiki-backend".into()], &ca);
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_ca = CertifiedIssuer::self_signed(other_params, KeyPair::generate().unwrap()).unwrap();
    let (rc, rk) = leaf(vec!["intruder".into()], &other_ca);
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client: Identity::from_pem(&client_pem.0, &client_pem.1),
        client_pem,
        rogue: Identity::from_pem(rc, rk),
    }
}

async fn tls_channel(
    addr: SocketAddr,
    ca: &str,
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// `GET /healthz` over TLS with ureq (the crate editgate fetches sources with).
fn https_health(addr: SocketAddr, ca: &str, client: Option<&(String, String)>) -> Result<String, String> {
    use ureq::tls::{Certificate as UCert, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let root = UCert::from_pem(ca.as_bytes()).unwrap();
    let mut tls = TlsConfig::builder().root_certs(RootCerts::Specific(std::sync::Arc::new(vec![root])));
    if let Some((cert, key)) = client {
        let c = UCert::from_pem(cert.as_bytes()).unwrap();
        let k = PrivateKey::from_pem(key.as_bytes()).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&[c], k)));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent
        .get(format!("https://localhost:{}/healthz", addr.port()))
        .call()
        .map_err(|e| e.to_string())?;
    resp.body_mut().read_to_string().map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_on_both_ports() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "server.pem", &p.server_cert);
    write(dir.path(), "server.key", &p.server_key);
    write(dir.path(), "ca.pem", &p.ca);
    let mut s = settings(&shipped_policies());
    s.tls = Some(editgate::server::TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: Some(dir.path().join("ca.pem")),
    });
    let r = Running::start_with(s).await;

    // gRPC with a client certificate from the CA: answered.
    let ch = tls_channel(r.grpc, &p.ca, Some(p.client.clone())).await.unwrap();
    let resp = check(
        &mut EditGateClient::new(ch),
        req("192.0.2.9", "enwiki", AccountKind::Anonymous),
    )
    .await;
    assert_eq!(Verdict::try_from(resp.verdict).unwrap(), Verdict::Allow);

    // Without a certificate, with one from another CA, or in plain text: refused.
    for id in [None, Some(p.rogue.clone())] {
        let refused = match tls_channel(r.grpc, &p.ca, id).await {
            Err(_) => true,
            Ok(ch) => EditGateClient::new(ch)
                .check(req("203.0.113.1", "enwiki", AccountKind::Anonymous))
                .await
                .is_err(),
        };
        assert!(refused);
    }
    let plain = match EditGateClient::connect(format!("http://{}", r.grpc)).await {
        Err(_) => true,
        Ok(mut c) => c.check(req("203.0.113.1", "", AccountKind::Anonymous)).await.is_err(),
    };
    assert!(plain, "plain text must not be answered on a TLS port");

    // The HTTP port: the same rule.
    let (http, ca, client) = (r.http, p.ca.clone(), p.client_pem.clone());
    let (with, without) =
        tokio::task::spawn_blocking(move || (https_health(http, &ca, Some(&client)), https_health(http, &ca, None)))
            .await
            .unwrap();
    assert!(with.unwrap().contains("\"policy_version\""));
    assert!(without.is_err());
}

#[test]
fn serve_refuses_to_start_on_unusable_tls_files() {
    let dir = policy_dir(&[("global.toml", ""), ("cert.pem", "not a certificate"), ("key.pem", "")]);
    assert_cmd::Command::cargo_bin("editgate")
        .unwrap()
        .args(crate::common::SERVE_LOOPBACK)
        .args(["--policies"])
        .arg(dir.path())
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("key.pem"))
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cert.pem"));
    assert_cmd::Command::cargo_bin("editgate")
        .unwrap()
        .args(["serve", "--policies"])
        .arg(dir.path())
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem"))
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("error: tls_cert: needs tls_key"));
}

/// The TLS private key lets whoever reads it impersonate the service: `serve` refuses a key
/// every user can read, and warns about one a foreign group can read (refused under
/// `--deny-warnings`), as it does for the decision log's key.
#[test]
fn serve_refuses_a_tls_key_others_can_read() {
    use predicates::prelude::*;
    use std::os::unix::fs::PermissionsExt as _;
    let p = pki();
    let dir = policy_dir(&[
        ("global.toml", ""),
        ("cert.pem", &p.server_cert),
        ("key.pem", &p.server_key),
    ]);
    let key = dir.path().join("key.pem");
    // `editgate serve` with the certificate and key, and `extra` flags.
    let command = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("editgate"));
        cmd.args(crate::common::SERVE_LOOPBACK)
            .args(["--no-watch", "--policies"])
            .arg(dir.path())
            .arg("--tls-cert")
            .arg(dir.path().join("cert.pem"))
            .arg("--tls-key")
            .arg(&key)
            .args(extra);
        cmd
    };
    let serve = |extra: &[&str]| {
        let mut cmd = assert_cmd::Command::from_std(command(extra));
        cmd.timeout(Duration::from_secs(30));
        cmd
    };
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    serve(&[]).assert().code(2).stderr(
        predicates::str::contains("the TLS private key")
            .and(predicates::str::contains(
                "can be read by every user on this host (mode 0644)",
            ))
            .and(predicates::str::contains("chmod 600")),
    );
    // Mode 0600, but an ACL entry lets another user read it: refused, as every user could.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    if editgate_testkit::dirs::grant_acl(&key, 65_534, None, 4) {
        serve(&[]).assert().code(2).stderr(
            predicates::str::contains("the TLS private key")
                .and(predicates::str::contains("through its ACL entry `user:65534:r--`")),
        );
        let pem = std::fs::read(&key).unwrap();
        std::fs::remove_file(&key).unwrap();
        editgate_testkit::dirs::write(dir.path(), "key.pem", &String::from_utf8(pem).unwrap());
    } else {
        eprintln!("skipped the ACL case: this file system has no ACLs");
    }
    // A group the service is not in: a warning, or with --deny-warnings a refusal.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    if std::os::unix::fs::chown(&key, None, Some(65_534)).is_err() {
        eprintln!("skipped the foreign-group case: only root can give a file a group it is not in");
        return;
    }
    serve(&["--deny-warnings"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("can be read by group 65534"));
    // Without it the service starts (and says why it should not have to).
    let mut child = command(&[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::common::serving_line(&mut child);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secret-file-mode") && stderr.contains("group 65534"),
        "{stderr}"
    );
}
