//! The generated `editgate.v1` types, and every conversion between them and the domain types.
//! Keeping conversions here means the service handlers never touch raw wire fields.

#[allow(missing_docs, clippy::all, clippy::unwrap_used)]
mod generated {
    tonic::include_proto!("editgate.v1");
}

pub use generated::*;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Status;

use editgate_core::attempt::{self, Attempt, parse_ip};
use editgate_core::decision::{Decision, Step};
use editgate_core::engine::{AddressFacts, IpFacts as DomainFacts, Snapshot};

/// The gRPC codec: prost's, except that a message that does not decode is the sender's
/// fault, `INVALID_ARGUMENT` naming what failed, where tonic-prost answers `INTERNAL` (which
/// would send a wiki backend looking for a bug in editgate). The generated client shares
/// it, so a response that does not decode reads as INVALID_ARGUMENT there too.
#[derive(Debug, Clone, Default)]
pub struct WireCodec<T, U>(tonic_prost::ProstCodec<T, U>);

impl<T, U> tonic::codec::Codec for WireCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <tonic_prost::ProstCodec<T, U> as tonic::codec::Codec>::Encoder;
    type Decoder = WireDecoder<<tonic_prost::ProstCodec<T, U> as tonic::codec::Codec>::Decoder>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(self.0.decoder())
    }
}

/// See [`WireCodec`].
#[derive(Debug)]
pub struct WireDecoder<D>(D);

impl<D> tonic::codec::Decoder for WireDecoder<D>
where
    D: tonic::codec::Decoder<Error = Status>,
{
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        self.0.decode(buf).map_err(|s| match s.code() {
            tonic::Code::Internal => Status::invalid_argument(format!("malformed protobuf message: {}", s.message())),
            _ => s,
        })
    }

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        self.0.buffer_settings()
    }
}

/// The encoded descriptor set of `editgate.v1`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("editgate_descriptor");

/// Request limits applied while converting.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Most `forwarded_for` entries accepted.
    pub max_forwarded_for: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self { max_forwarded_for: 32 }
    }
}

/// How far in the future `registered_at` may be before it is refused.
const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

/// Checks a request and turns it into an [`Attempt`] (through [`Attempt::new`], like every
/// other entry point). Every error is `INVALID_ARGUMENT` and names the offending field.
///
/// The strings the attempt needs (wiki, action, groups, rights) are moved out of `req` rather
/// than copied: at a million decisions a second the copies were a good part of the
/// allocations per request. `request_id` is never touched, so an error can still name the
/// request.
pub fn to_attempt(req: &mut CheckRequest, now: Timestamp, limits: RequestLimits) -> Result<Attempt, Status> {
    let invalid = |e: attempt::FieldError| Status::invalid_argument(e.to_string());
    if req.ip.is_empty() {
        return Err(Status::invalid_argument("ip: required"));
    }
    let ip = parse_ip("ip", &req.ip).map_err(invalid)?;
    if req.probe {
        // A probe decides on the client address alone (see `CheckRequest.probe`).
        req.forwarded_for.clear();
    }
    if req.forwarded_for.len() > limits.max_forwarded_for {
        return Err(Status::invalid_argument(format!(
            "forwarded_for: {} entries, at most {} are accepted",
            req.forwarded_for.len(),
            limits.max_forwarded_for
        )));
    }
    let forwarded_for = req
        .forwarded_for
        .iter()
        .enumerate()
        .map(|(i, s)| parse_ip(&format!("forwarded_for[{i}]"), s).map_err(invalid))
        .collect::<Result<Vec<_>, _>>()?;
    let acct = req
        .account
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("account: required (with account.kind)"))?;
    let kind = match AccountKind::try_from(acct.kind) {
        Ok(AccountKind::Anonymous) => attempt::AccountKind::Anonymous,
        Ok(AccountKind::Temporary) => attempt::AccountKind::Temporary,
        Ok(AccountKind::Registered) => attempt::AccountKind::Registered,
        Ok(AccountKind::Unspecified) => {
            return Err(Status::invalid_argument(
                "account.kind: unspecified; set ACCOUNT_KIND_ANONYMOUS, ACCOUNT_KIND_TEMPORARY or ACCOUNT_KIND_REGISTERED",
            ));
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "account.kind: unknown value {}",
                acct.kind
            )));
        }
    };
    let registered_at = match &acct.registered_at {
        None => None,
        Some(ts) => {
            // google.protobuf.Timestamp: nanos in 0..=999,999,999 (jiff would accept and
            // normalize a negative value).
            if !(0..1_000_000_000).contains(&ts.nanos) {
                return Err(Status::invalid_argument(format!(
                    "account.registered_at.nanos: {} is outside 0..=999999999",
                    ts.nanos
                )));
            }
            let t = Timestamp::new(ts.seconds, ts.nanos)
                .map_err(|_| Status::invalid_argument("account.registered_at: not a valid timestamp"))?;
            // Hosts' clocks differ by a little; an account created "just now" by a backend
            // whose clock runs ahead is not an error (its age is 0).
            if t > now + CLOCK_SKEW {
                return Err(Status::invalid_argument("account.registered_at: in the future"));
            }
            Some(t)
        }
    };
    let (edit_count, email_confirmed) = (acct.edit_count, acct.email_confirmed);
    let (groups, rights) = match req.account.as_mut() {
        Some(a) => (std::mem::take(&mut a.groups), std::mem::take(&mut a.rights)),
        None => Default::default(),
    };
    let account = attempt::Account {
        kind,
        groups,
        rights,
        edit_count,
        registered_at,
        email_confirmed,
    };
    Attempt::new(
        ip,
        forwarded_for,
        std::mem::take(&mut req.wiki),
        std::mem::take(&mut req.action),
        account,
    )
    .map_err(invalid)
}

/// The wire verdict.
pub fn verdict(v: editgate_core::decision::Verdict) -> Verdict {
    match v {
        editgate_core::decision::Verdict::Allow => Verdict::Allow,
        editgate_core::decision::Verdict::RequireLogin => Verdict::RequireLogin,
        editgate_core::decision::Verdict::Block => Verdict::Block,
    }
}

/// The wire response for a decision about an address of which `address` is known.
pub fn to_response(d: &Decision<'_>, address: &AddressFacts<'_>, request_id: String) -> CheckResponse {
    CheckResponse {
        tags: address.tags.iter().map(|s| (*s).to_owned()).collect(),
        sources: address.sources.iter().map(|s| (*s).to_owned()).collect(),
        shared_address: address.shared,
        verdict: verdict(d.verdict) as i32,
        rule_id: d.rule_id.to_owned(),
        message: d.message.to_owned(),
        reason: d.reason.to_owned(),
        shadow_rule_ids: d.shadow_rule_ids.iter().map(|s| (*s).to_owned()).collect(),
        policy_version: d.policy_version.to_owned(),
        request_id,
        appeal: d.appeal.to_owned(),
    }
}

/// The wire facts.
/// How current each source of `f.sources` is, as of `now`, with a `url` source's latest
/// confirmation from `confirmed`.
pub fn source_data(
    f: &DomainFacts,
    snap: &Snapshot,
    now: Timestamp,
    confirmed: &dyn Fn(&str) -> Option<Timestamp>,
) -> Vec<SourceData> {
    f.sources
        .iter()
        .filter_map(|name| snap.sources().iter().find(|s| &s.name == name))
        .map(|s| {
            let c = confirmed(&s.name);
            let current = s.current(c);
            SourceData {
                source: s.name.clone(),
                data_time: current.map(|t| t.at.to_string()).unwrap_or_default(),
                age_seconds: s.data_age_secs(now, c).unwrap_or_default(),
                from: current.map(|t| t.from.as_str()).unwrap_or_default().to_owned(),
                detail: current.map(|t| t.from.describe()).unwrap_or_default(),
                stale: s.is_stale(now, c),
            }
        })
        .collect()
}

/// The wire facts; `source_data` from [`source_data`].
pub fn to_facts(f: &DomainFacts, source_data: Vec<SourceData>) -> generated::IpFacts {
    generated::IpFacts {
        source_data,
        ip: f.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        sources: f.sources.clone(),
        inline_rules: f.inline_rules.clone(),
        asn: f.asn.as_ref().map_or(0, |(n, _)| *n),
        asn_organization: f.asn.as_ref().and_then(|(_, o)| o.clone()).unwrap_or_default(),
        country: f.country.clone().unwrap_or_default(),
        maxmind_flags: f
            .maxmind_flags
            .iter()
            .map(|(s, fl)| MaxmindFlags {
                source: s.clone(),
                flags: fl.iter().map(|f| (*f).to_owned()).collect(),
            })
            .collect(),
    }
}

/// The wire trace.
pub fn to_steps(snap: &Snapshot, trace: &[Step]) -> Vec<RuleStep> {
    trace
        .iter()
        .map(|s| {
            let r = &snap.rules()[s.rule as usize];
            RuleStep {
                rule_id: r.id.clone(),
                origin: r.location.to_string(),
                verdict: verdict(r.verdict) as i32,
                outcome: s.outcome.name().to_owned(),
                key: s.outcome.key().map(|k| k.as_str()).unwrap_or_default().to_owned(),
                detail: s.outcome.describe(),
            }
        })
        .collect()
}

/// A `CheckRequest` in proto3 JSON, accepting both JSON and proto field names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    #[serde(default)]
    ip: String,
    #[serde(default, alias = "forwarded_for", rename = "forwardedFor")]
    forwarded_for: Vec<String>,
    #[serde(default)]
    wiki: String,
    #[serde(default)]
    action: String,
    account: Option<JsonAccount>,
    #[serde(default, alias = "request_id", rename = "requestId")]
    request_id: String,
    #[serde(default)]
    probe: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonAccount {
    #[serde(default)]
    kind: Option<serde_json::Value>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    rights: Vec<String>,
    /// proto3 JSON writes uint64 as a string; numbers are accepted too.
    #[serde(default, alias = "edit_count", rename = "editCount")]
    edit_count: Option<serde_json::Value>,
    #[serde(default, alias = "registered_at", rename = "registeredAt")]
    registered_at: Option<Timestamp>,
    #[serde(default, alias = "email_confirmed", rename = "emailConfirmed")]
    email_confirmed: bool,
}

/// Parses a `CheckRequest` from proto3 JSON (JSON or proto field names). Replay and the
/// HTTP/JSON endpoint use it, then [`to_attempt`], so they validate exactly like gRPC.
pub fn request_from_json(text: &str) -> Result<CheckRequest, String> {
    let j: JsonRequest = serde_json::from_str(text).map_err(|e| format!("invalid JSON request: {e}"))?;
    let account = match j.account {
        None => None,
        Some(a) => {
            let kind = match &a.kind {
                None => AccountKind::Unspecified as i32,
                // A number must be one of the enum's own: `4294967299` once wrapped to 3 and
                // was decided as a registered account.
                Some(serde_json::Value::Number(n)) => n
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .filter(|&v| AccountKind::try_from(v).is_ok())
                    .ok_or_else(|| format!("account.kind: {n} is not an account kind"))?,
                Some(serde_json::Value::String(s)) => AccountKind::from_str_name(s)
                    .map(|k| k as i32)
                    .ok_or_else(|| format!("account.kind: unknown value `{s}`"))?,
                Some(other) => return Err(format!("account.kind: unexpected {other}")),
            };
            let edit_count = match &a.edit_count {
                None => 0,
                Some(serde_json::Value::Number(n)) => n.as_u64().ok_or("account.editCount: not a count")?,
                Some(serde_json::Value::String(s)) => s
                    .parse()
                    .map_err(|_| format!("account.editCount: `{s}` is not a count"))?,
                Some(other) => return Err(format!("account.editCount: unexpected {other}")),
            };
            Some(Account {
                kind,
                groups: a.groups,
                rights: a.rights,
                edit_count,
                registered_at: a.registered_at.map(|t| prost_types::Timestamp {
                    seconds: t.as_second(),
                    nanos: t.subsec_nanosecond(),
                }),
                email_confirmed: a.email_confirmed,
            })
        }
    };
    Ok(CheckRequest {
        ip: j.ip,
        forwarded_for: j.forwarded_for,
        wiki: j.wiki,
        action: j.action,
        account,
        request_id: j.request_id,
        probe: j.probe,
    })
}

/// A JSON request checked as the HTTP port checks it, as of `now`: `None` when the text is not
/// a `CheckRequest` at all, else the attempt or the error naming the field. (The fuzz target
/// `request_json` and its replay in `cargo test` check its properties.)
pub fn json_attempt(text: &str, now: Timestamp, limits: RequestLimits) -> Option<Result<Attempt, String>> {
    let mut req = request_from_json(text).ok()?;
    Some(to_attempt(&mut req, now, limits).map_err(|s| s.message().to_owned()))
}

/// A `CheckResponse` in proto3 JSON (lowerCamelCase names, enum names), every field present.
pub fn response_json(r: &CheckResponse) -> Value {
    json!({
        "verdict": r.verdict().as_str_name(),
        "ruleId": r.rule_id,
        "message": r.message,
        "reason": r.reason,
        "shadowRuleIds": r.shadow_rule_ids,
        "policyVersion": r.policy_version,
        "requestId": r.request_id,
        "appeal": r.appeal,
        "tags": r.tags,
        "sources": r.sources,
        "sharedAddress": r.shared_address,
    })
}

/// An `ExplainResponse` in proto3 JSON.
pub fn explain_json(r: &ExplainResponse) -> Value {
    let facts = r.facts.as_ref().map(|f| {
        json!({
            "ip": f.ip,
            "sources": f.sources,
            "inlineRules": f.inline_rules,
            "asn": f.asn,
            "asnOrganization": f.asn_organization,
            "country": f.country,
            "maxmindFlags": f.maxmind_flags.iter().map(|m| json!({"source": m.source, "flags": m.flags})).collect::<Vec<_>>(),
            "sourceData": f.source_data.iter().map(|d| json!({
                "source": d.source, "dataTime": d.data_time, "ageSeconds": d.age_seconds,
                "from": d.from, "detail": d.detail, "stale": d.stale,
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "decision": r.decision.as_ref().map(response_json),
        "facts": facts,
        "steps": r.steps.iter().map(|s| json!({
            "ruleId": s.rule_id,
            "origin": s.origin,
            "verdict": s.verdict().as_str_name(),
            "outcome": s.outcome,
            "key": s.key,
            "detail": s.detail,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CheckRequest {
        CheckRequest {
            ip: "192.0.2.1".into(),
            wiki: " EnWiki ".into(),
            action: "Edit".into(),
            request_id: "r-1".into(),
            account: Some(Account {
                kind: AccountKind::Registered as i32,
                groups: vec!["sysop".into()],
                rights: vec!["ipblock-exempt".into()],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_request_gives_up_its_strings_but_keeps_its_request_id() {
        let mut req = request();
        let a = to_attempt(&mut req, Timestamp::now(), RequestLimits::default()).unwrap();
        assert_eq!((a.wiki(), a.action()), ("enwiki", "edit"));
        assert_eq!(a.account().groups, ["sysop"]);
        assert_eq!(a.account().rights, ["ipblock-exempt"]);
        assert_eq!(req.request_id, "r-1");
    }

    #[test]
    fn an_invalid_request_keeps_its_request_id() {
        for bad in [
            |r: &mut CheckRequest| r.forwarded_for = vec!["not an ip".into()],
            |r: &mut CheckRequest| r.wiki = "officewiki\0".into(),
        ] {
            let mut req = request();
            bad(&mut req);
            let err = to_attempt(&mut req, Timestamp::now(), RequestLimits::default()).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert_eq!(req.request_id, "r-1");
        }
    }

    #[test]
    fn an_out_of_range_account_kind_is_refused_naming_the_field() {
        for kind in ["4294967299", "-1", "4", "1.5", "9223372036854775808"] {
            let text = format!(r#"{{"ip":"162.247.74.201","account":{{"kind":{kind}}}}}"#);
            let err = request_from_json(&text).unwrap_err();
            assert!(
                err.starts_with("account.kind: ") && err.ends_with("is not an account kind"),
                "{kind}: {err}"
            );
        }
        let ok = request_from_json(r#"{"ip":"192.0.2.1","account":{"kind":3}}"#).unwrap();
        assert_eq!(ok.account.unwrap().kind, AccountKind::Registered as i32);
    }

    /// Issue 12, item 13: a Timestamp's nanos must be in 0..=999,999,999.
    #[test]
    fn negative_nanos_are_refused() {
        let mut req = request();
        req.account.as_mut().unwrap().registered_at = Some(prost_types::Timestamp { seconds: 1, nanos: -1 });
        let err = to_attempt(&mut req, Timestamp::now(), RequestLimits::default()).unwrap_err();
        assert!(err.message().starts_with("account.registered_at.nanos"), "{err:?}");
    }
}
