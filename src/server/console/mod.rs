//! The admin console on the HTTP port: server-rendered HTML for the people who tune
//! editgate. Read-only: it shows the serving policy and what it does, and explains an
//! address; nothing in it changes a policy.
//!
//! - `/`: status and problems, the serving version, the last reload, every source with its
//!   entries, data age (and where the age comes from) and last fetch;
//! - `/rules?wiki=W&page=N`: a wiki's rules in evaluation order, 100 a page, each with its
//!   decisions since start and over the last hour, minute by minute (`activity`),
//!   shadow matches beside them;
//! - `/explain?ip=…&wiki=…`: the same trace as `POST /v1/explain` (the query becomes a
//!   `CheckRequest` and goes through [`State::explain`]); the inputs are in the URL, so a
//!   result can be linked from an appeal discussion;
//! - `/reloads`: the last 20 loads and reloads.
//!
//! No external asset and no build chain: one stylesheet and one small script served by the
//! binary, charts as inline SVG. The script only reloads the overview, rules and reloads
//! pages every 10 s, and not while the reader is using a form (off with `refresh=0`); every
//! page works without it. Every page is sent
//! with a strict Content-Security-Policy, `Referrer-Policy: no-referrer` (an explain URL
//! holds an address, and must not leak to an appeal link's site) and `Cache-Control:
//! no-store`. Nothing here logs a request or its address. Off with `serve --no-console`.
//!
//! The console never competes with the wikis' requests for their threads: pages render on
//! the blocking pool, `console_concurrency` at a time (1 by default), and long lists are
//! paged; `console_listen` gives it a listener of its own, with its own connection slots.

mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;

use super::{RequestError, State};
use crate::proto::{Account, AccountKind, CheckRequest};

/// The console's Content-Security-Policy: nothing but the console's own stylesheet and
/// script, forms that submit to the console, no inline code, no frames.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Seconds between automatic refreshes of the overview and rules pages.
const REFRESH_SECS: u32 = 10;

const STYLESHEET: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("refresh.js");

/// The console's routes, to merge into the HTTP port's router.
pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/", get(overview))
        .route("/rules", get(rules))
        .route("/explain", get(explain))
        .route("/reloads", get(reloads))
        .route("/console.css", get(|| asset(STYLESHEET, "text/css; charset=utf-8")))
        .route("/console.js", get(|| asset(SCRIPT, "text/javascript; charset=utf-8")))
}

/// The query string's `key=value` pairs, decoded, empty values dropped.
fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Whether the page refreshes itself: yes unless `refresh=0`.
fn refresh(pairs: &[(String, String)]) -> Option<u32> {
    (first(pairs, "refresh") != Some("0")).then_some(REFRESH_SECS)
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(h);
    resp
}

/// The headers every console response carries.
fn secure(h: &mut axum::http::HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// How long a console request may take, waiting for its turn included, before it gets 503.
const RENDER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Renders a page on the console's threads, `console_concurrency` at once (see `offload`):
/// the pages of a large policy take milliseconds of CPU each, and rendering them on the
/// request threads would hold `/v1/check` past the wikis' timeout. A full queue or a page
/// not rendered within the wait gets 503: the console is busy.
async fn rendered(state: Arc<State>, render: impl FnOnce(&State) -> Response + Send + 'static) -> Response {
    let pool_state = state.clone();
    match state.console_pool.run(RENDER_WAIT, move || render(&pool_state)).await {
        Ok(page) => page,
        Err(RequestError::Internal(_)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response()
        }
        Err(_) => {
            let mut resp = (
                StatusCode::SERVICE_UNAVAILABLE,
                "the console is busy rendering other pages; try again shortly",
            )
                .into_response();
            secure(resp.headers_mut());
            resp
        }
    }
}

async fn overview(AxState(state): AxState<Arc<State>>, RawQuery(q): RawQuery) -> Response {
    rendered(state, move |state| {
        let now = Timestamp::now();
        let health = state.health(now);
        let live = state.current();
        html(
            StatusCode::OK,
            pages::overview(
                &health,
                &live,
                &state.metrics.activity,
                now,
                refresh(&pairs(q.as_deref())),
            ),
        )
    })
    .await
}

async fn rules(AxState(state): AxState<Arc<State>>, RawQuery(q): RawQuery) -> Response {
    rendered(state, move |state| {
        let pairs = pairs(q.as_deref());
        let now = super::coarse_now();
        let live = state.current();
        let wiki = first(&pairs, "wiki").unwrap_or_default().to_ascii_lowercase();
        let page = first(&pairs, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
        html(
            StatusCode::OK,
            pages::rules(
                &live,
                &state.metrics.activity,
                &wiki,
                page,
                super::activity::minute_of(now),
                refresh(&pairs),
            ),
        )
    })
    .await
}

async fn reloads(AxState(state): AxState<Arc<State>>, RawQuery(q): RawQuery) -> Response {
    rendered(state, move |state| {
        let history = state.reload_history();
        html(
            StatusCode::OK,
            pages::reloads(&history, Timestamp::now(), refresh(&pairs(q.as_deref()))),
        )
    })
    .await
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secure(h);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    resp
}

/// The explain form's inputs, as typed (so the form shows them back).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExplainForm {
    /// `ip`.
    pub ip: String,
    /// `xff`: forwarded-for addresses, repeated or comma-separated.
    pub xff: String,
    /// `wiki`.
    pub wiki: String,
    /// `action`.
    pub action: String,
    /// `account`: `anonymous`, `temporary` or `registered`.
    pub account: String,
    /// `edits`.
    pub edits: String,
    /// `age`, like `30d`.
    pub age: String,
    /// `group`: repeated or comma-separated.
    pub group: String,
    /// `right`: repeated or comma-separated.
    pub right: String,
    /// `email`: the account has a confirmed e-mail address.
    pub email: bool,
}

impl ExplainForm {
    /// Reads the form from a query string; repeated list keys are joined with `, `.
    pub fn from_query(query: Option<&str>) -> Self {
        let pairs = pairs(query);
        let all = |key: &str| {
            pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let one = |key: &str| first(&pairs, key).unwrap_or_default().to_owned();
        Self {
            ip: one("ip"),
            xff: all("xff"),
            wiki: one("wiki"),
            action: one("action"),
            account: one("account"),
            edits: one("edits"),
            age: one("age"),
            group: all("group"),
            right: all("right"),
            email: matches!(first(&pairs, "email"), Some("1" | "on" | "true" | "yes")),
        }
    }

    /// The `CheckRequest` these inputs describe, as of `now`; errors name the form field.
    /// Everything else (address syntax, wiki ids, limits) is checked by [`State::explain`],
    /// exactly as for `POST /v1/explain`.
    pub fn request(&self, now: Timestamp) -> Result<CheckRequest, FormError> {
        let kind = match self.account.as_str() {
            "" | "anonymous" => AccountKind::Anonymous,
            "temporary" => AccountKind::Temporary,
            "registered" => AccountKind::Registered,
            other => {
                return Err(FormError::new(
                    "account",
                    format!("`{other}` is not an account kind: anonymous, temporary or registered"),
                ));
            }
        };
        let edit_count = match self.edits.as_str() {
            "" => 0,
            n => n
                .parse::<u64>()
                .map_err(|_| FormError::new("edits", format!("`{n}` is not a whole number of edits")))?,
        };
        let registered_at = match self.age.as_str() {
            "" => None,
            a => {
                let secs = editgate_core::policy::parse_duration(a).ok_or_else(|| {
                    FormError::new(
                        "age",
                        format!("`{a}` is not a duration: a number and a unit, like `30d`"),
                    )
                })?;
                let at = now
                    .checked_sub(jiff::SignedDuration::from_secs(secs))
                    .map_err(|_| FormError::new("age", format!("`{a}` is too long ago")))?;
                Some(pbjson_types::Timestamp {
                    seconds: at.as_second(),
                    nanos: 0,
                })
            }
        };
        if self.ip.is_empty() {
            return Err(FormError::new("ip", "an address is needed, like `162.247.74.201`"));
        }
        Ok(CheckRequest {
            ip: self.ip.clone(),
            forwarded_for: split(&self.xff),
            wiki: self.wiki.clone(),
            action: self.action.clone(),
            account: Some(Account {
                kind: kind as i32,
                groups: split(&self.group),
                rights: split(&self.right),
                edit_count,
                registered_at,
                email_confirmed: self.email,
            }),
            ..CheckRequest::default()
        })
    }
}

/// A comma-separated list, trimmed, empty items dropped.
fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An explain input that cannot be used, named by its form field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// The form field (`ip`, `xff`, `group`, …).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl FormError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// The form field a request error is about: the service names `forwarded_for[2]` or
    /// `account.groups[0]`, the form calls them `xff` and `group`. An error that is not about
    /// a field (starting, overloaded) has no field.
    fn from_request(e: RequestError) -> Self {
        let RequestError::Invalid(e) = e else {
            return Self::new("", e.to_string());
        };
        let field = match e.field.split('[').next().unwrap_or_default() {
            "ip" => "ip",
            "forwarded_for" => "xff",
            "wiki" => "wiki",
            "action" => "action",
            "account.groups" => "group",
            "account.rights" => "right",
            "account.registered_at" => "age",
            "account.kind" => "account",
            _ => "",
        };
        if field.is_empty() {
            Self::new("", e.to_string())
        } else {
            Self::new(field, e.message)
        }
    }
}

async fn explain(AxState(state): AxState<Arc<State>>, RawQuery(q): RawQuery) -> Response {
    rendered(state, move |state| explain_page(state, q.as_deref())).await
}

fn explain_page(state: &State, q: Option<&str>) -> Response {
    let form = ExplainForm::from_query(q);
    let live = state.current();
    if form == ExplainForm::default() {
        return html(StatusCode::OK, pages::explain(&form, &live.snapshot, None));
    }
    let result = form
        .request(Timestamp::now())
        .and_then(|mut req| state.explain(&mut req).map_err(FormError::from_request));
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) if e.field.is_empty() => StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    html(status, pages::explain(&form, &live.snapshot, Some(&result)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_repeated_and_comma_separated_lists() {
        let f = ExplainForm::from_query(Some(
            "ip=162.247.74.201&wiki=enwiki&account=registered&group=sysop&group=bot%2C+steward&right=&xff=1.2.3.4,5.6.7.8&email=on",
        ));
        assert_eq!(f.ip, "162.247.74.201");
        assert_eq!(f.group, "sysop, bot, steward");
        assert_eq!(f.right, "");
        assert!(f.email);
        let req = f.request(Timestamp::now()).unwrap();
        let acct = req.account.unwrap();
        assert_eq!(acct.groups, ["sysop", "bot", "steward"]);
        assert_eq!(req.forwarded_for, ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(acct.kind, AccountKind::Registered as i32);
    }

    #[test]
    fn bad_inputs_name_their_field() {
        let now = Timestamp::now();
        let err = |q: &str| ExplainForm::from_query(Some(q)).request(now).unwrap_err();
        assert_eq!(err("ip=1.2.3.4&account=admin").field, "account");
        assert_eq!(err("ip=1.2.3.4&edits=-3").field, "edits");
        assert_eq!(err("ip=1.2.3.4&age=forever").field, "age");
        assert_eq!(err("wiki=enwiki").field, "ip");
    }

    #[test]
    fn an_age_becomes_a_registration_time() {
        let now = Timestamp::from_second(1_000_000_000).unwrap();
        let req = ExplainForm::from_query(Some("ip=1.2.3.4&account=registered&age=2d"))
            .request(now)
            .unwrap();
        assert_eq!(
            req.account.unwrap().registered_at.unwrap().seconds,
            1_000_000_000 - 2 * 86_400
        );
    }

    #[test]
    fn service_errors_map_to_form_fields() {
        use editgate_core::attempt::FieldError;
        let e = FormError::from_request(FieldError::new("forwarded_for[1]", "`x` is not an IP address").into());
        assert_eq!((e.field, e.message.as_str()), ("xff", "`x` is not an IP address"));
        let e = FormError::from_request(FieldError::new("account.groups[0]", "longer than 255 bytes").into());
        assert_eq!(e.field, "group");
        let e = FormError::from_request(FieldError::new("request_id", "odd").into());
        assert_eq!((e.field, e.message.as_str()), ("", "request_id: odd"));
        let e = FormError::from_request(RequestError::Overloaded);
        assert!(
            e.field.is_empty() && e.message.contains("concurrent request limit"),
            "{e:?}"
        );
    }

    #[test]
    fn refresh_is_on_unless_turned_off() {
        assert_eq!(refresh(&pairs(Some("wiki=enwiki"))), Some(REFRESH_SECS));
        assert_eq!(refresh(&pairs(Some("refresh=0"))), None);
    }
}
