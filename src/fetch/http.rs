//! One GET of a source's `url`: conditional on the saved copy's validators, bounded by
//! `max_bytes` and `timeout`, with the source's `auth_header` when it has one.
//!
//! A secret header goes only to the origin of `url`. ureq drops `Authorization` on a redirect
//! to another host but forwards any other header (Spur's `Token`), so a source with a secret
//! follows redirects here, sending the header only while the scheme, host and port are the
//! `url`'s (a feed served from a signed storage address gets no token).

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use editgate_core::policy::{Auth, Remote};
use editgate_core::sidecar::FetchMeta;
use ureq::http::{Response, StatusCode, Uri};

use super::{FetchError, save_error};

/// Redirects followed before a fetch gives up (ureq's default).
const MAX_REDIRECTS: usize = 10;

/// The validators an answer came with.
pub(super) struct Validators {
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
}

/// A body read whole, for lists and databases.
pub(super) struct Body {
    pub(super) bytes: Vec<u8>,
    pub(super) validators: Validators,
}

/// One GET with the validators of `meta`, reading at most `max_bytes`. `Ok(None)` is a 304.
pub(super) fn request(
    dir: &Path,
    remote: &Remote,
    max_bytes: u64,
    meta: Option<&FetchMeta>,
) -> Result<Option<Body>, FetchError> {
    let Some(mut resp) = send(dir, remote, meta)? else {
        return Ok(None);
    };
    let validators = validators(&resp);
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(max_bytes)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(n) => FetchError::TooLarge(n),
            e => FetchError::Request(Box::new(e)),
        })?;
    Ok(Some(Body { bytes, validators }))
}

/// [`request`], writing the body to `file` (synced) as it arrives instead of keeping it.
pub(super) fn request_to_file(
    dir: &Path,
    remote: &Remote,
    max_bytes: u64,
    meta: Option<&FetchMeta>,
    file: &Path,
) -> Result<Option<Validators>, FetchError> {
    let Some(mut resp) = send(dir, remote, meta)? else {
        return Ok(None);
    };
    let validators = validators(&resp);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(|e| save_error(file, e))?;
    }
    let mut out = std::fs::File::create(file).map_err(|e| save_error(file, e))?;
    let mut body = resp.body_mut().with_config().limit(max_bytes).reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // A read error is the origin's (or the limit's); a write error is this host's.
        let n = std::io::Read::read(&mut body, &mut buf).map_err(|e| {
            match e.get_ref().and_then(|inner| inner.downcast_ref::<ureq::Error>()) {
                Some(ureq::Error::BodyExceedsLimit(n)) => FetchError::TooLarge(*n),
                _ => FetchError::Request(Box::new(ureq::Error::Io(e))),
            }
        })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| save_error(file, e))?;
    }
    out.sync_all().map_err(|e| save_error(file, e))?;
    Ok(Some(validators))
}

/// Sends the GET with the validators of `meta`; the response when it has a body to read
/// (`None`: 304), an error for any other status.
fn send(dir: &Path, remote: &Remote, meta: Option<&FetchMeta>) -> Result<Option<Response<ureq::Body>>, FetchError> {
    let secret = remote.auth.as_ref().map(|a| read_secret(dir, a)).transpose()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(remote.timeout_secs.max(1) as u64)))
        .http_status_as_error(false)
        // With a secret, redirects are followed below, where the header is kept in check.
        .max_redirects(if secret.is_some() { 0 } else { MAX_REDIRECTS as u32 })
        .user_agent(concat!("editgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let origin = remote.url.parse::<Uri>().ok();
    let mut url = remote.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent.get(&url);
        if let Some(m) = meta {
            if let Some(etag) = &m.etag {
                req = req.header("If-None-Match", etag);
            }
            if let Some(lm) = &m.last_modified {
                req = req.header("If-Modified-Since", lm);
            }
        }
        if let Some((auth, value)) = &secret
            && let Ok(here) = url.parse::<Uri>()
            && origin.as_ref().is_some_and(|o| same_origin(o, &here))
        {
            req = req.header(auth.header.as_str(), value.as_str());
        }
        let resp = req.call().map_err(|e| FetchError::Request(Box::new(e)))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if secret.is_some() && status.is_redirection() {
            url = redirect_target(&url, &resp)?;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        return Ok(Some(resp));
    }
    Err(FetchError::Redirect(format!("more than {MAX_REDIRECTS} redirects")))
}

/// The value of `auth.header`, read from `auth.file` at each fetch.
fn read_secret(dir: &Path, auth: &Auth) -> Result<(Auth, String), FetchError> {
    let path = dir.join(&auth.file);
    let fail = |why: String| FetchError::Auth(format!("`auth_file` {}: {why}", path.display()));
    // A token is short; a large file is not one.
    let text = editgate_core::files::read_regular(&path, 64 << 10).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(text).map_err(|_| fail("not UTF-8 text".into()))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(fail("empty".into()));
    }
    // The value never appears in an error: only what is wrong with it.
    if value.chars().any(|c| c.is_control()) {
        return Err(fail(
            "holds a line break or control character; write the value alone".into(),
        ));
    }
    Ok((auth.clone(), value.to_owned()))
}

/// Scheme, host and port equal (the port defaulted from the scheme).
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| {
        u.port_u16().or_else(|| match u.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
            Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
            _ => None,
        })
    };
    let scheme = |u: &Uri| u.scheme_str().map(str::to_ascii_lowercase);
    let host = |u: &Uri| u.host().map(str::to_ascii_lowercase);
    scheme(a) == scheme(b) && host(a) == host(b) && port(a) == port(b)
}

/// Where a redirect answer points, resolved against the address that gave it.
fn redirect_target(from: &str, resp: &Response<ureq::Body>) -> Result<String, FetchError> {
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| FetchError::Redirect(format!("HTTP {status} without a usable `Location`")))?;
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_owned());
    }
    let base = from.parse::<Uri>().map_err(|e| FetchError::Redirect(e.to_string()))?;
    match (base.scheme_str(), base.authority(), location.strip_prefix('/')) {
        // `//host/path`: the same scheme, another host.
        (Some(scheme), _, Some(rest)) if rest.starts_with('/') => Ok(format!("{scheme}:{location}")),
        (Some(scheme), Some(authority), Some(_)) => Ok(format!("{scheme}://{authority}{location}")),
        // The target is not shown: a signed address carries its own credentials.
        _ => Err(FetchError::Redirect(format!(
            "HTTP {status} to a `Location` that is not an absolute address or path"
        ))),
    }
}

fn validators(resp: &Response<ureq::Body>) -> Validators {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Validators {
        etag: header("etag"),
        last_modified: header("last-modified"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert!(same_origin(
            &u("https://feeds.spur.us/v2/x"),
            &u("https://FEEDS.spur.us:443/y")
        ));
        assert!(!same_origin(
            &u("https://feeds.spur.us/x"),
            &u("http://feeds.spur.us/x")
        ));
        assert!(!same_origin(
            &u("https://feeds.spur.us/x"),
            &u("https://storage.example/x")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:8080/x"),
            &u("http://127.0.0.1:8081/x")
        ));
    }
}
