//! The wire: the generated `editgate.v1` types, their one JSON mapping (proto3 JSON, generated
//! from the same `.proto` by pbjson), and every conversion between them and the domain types.
//! gRPC, the HTTP/JSON API, the console, `replay` and `check --json` all go through here, so
//! the service handlers and the CLI never touch raw wire fields.

#[allow(missing_docs, clippy::all, clippy::unwrap_used)]
mod generated {
    tonic::include_proto!("editgate.v1");
    include!(concat!(env!("OUT_DIR"), "/editgate.v1.serde.rs"));
}

pub use generated::*;

use jiff::Timestamp;
use tonic::Status;

use editgate_core::attempt::{self, Attempt, FieldError, parse_ip};
use editgate_core::decision::{Decision, Step};
use editgate_core::engine::{AddressReport, AddressSummary, Snapshot};

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
/// other entry point). Every error names the offending field.
///
/// The strings the attempt needs (wiki, action, groups, rights) are moved out of `req` rather
/// than copied: at a million decisions a second the copies were a good part of the
/// allocations per request. `request_id` is never touched, so an error can still name the
/// request.
pub fn to_attempt(req: &mut CheckRequest, now: Timestamp, limits: RequestLimits) -> Result<Attempt, FieldError> {
    if req.ip.is_empty() {
        return Err(FieldError::new("ip", "required"));
    }
    let ip = parse_ip("ip", &req.ip)?;
    if req.forwarded_for.len() > limits.max_forwarded_for {
        return Err(FieldError::new(
            "forwarded_for",
            format!(
                "{} entries, at most {} are accepted",
                req.forwarded_for.len(),
                limits.max_forwarded_for
            ),
        ));
    }
    let forwarded_for = req
        .forwarded_for
        .iter()
        .enumerate()
        .map(|(i, s)| parse_ip(&format!("forwarded_for[{i}]"), s))
        .collect::<Result<Vec<_>, _>>()?;
    let acct = req
        .account
        .as_ref()
        .ok_or_else(|| FieldError::new("account", "required (with account.kind)"))?;
    let kind = match AccountKind::try_from(acct.kind) {
        Ok(AccountKind::Anonymous) => attempt::AccountKind::Anonymous,
        Ok(AccountKind::Temporary) => attempt::AccountKind::Temporary,
        Ok(AccountKind::Registered) => attempt::AccountKind::Registered,
        Ok(AccountKind::Unspecified) => {
            return Err(FieldError::new(
                "account.kind",
                "unspecified; set ACCOUNT_KIND_ANONYMOUS, ACCOUNT_KIND_TEMPORARY or ACCOUNT_KIND_REGISTERED",
            ));
        }
        Err(_) => {
            return Err(FieldError::new("account.kind", format!("unknown value {}", acct.kind)));
        }
    };
    let registered_at = match &acct.registered_at {
        None => None,
        Some(ts) => {
            // google.protobuf.Timestamp: nanos in 0..=999,999,999 (jiff would accept and
            // normalize a negative value).
            if !(0..1_000_000_000).contains(&ts.nanos) {
                return Err(FieldError::new(
                    "account.registered_at.nanos",
                    format!("{} is outside 0..=999999999", ts.nanos),
                ));
            }
            let t = Timestamp::new(ts.seconds, ts.nanos)
                .map_err(|_| FieldError::new("account.registered_at", "not a valid timestamp"))?;
            // Hosts' clocks differ by a little; an account created "just now" by a backend
            // whose clock runs ahead is not an error (its age is 0).
            if t > now + CLOCK_SKEW {
                return Err(FieldError::new("account.registered_at", "in the future"));
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
}

/// The wire verdict.
pub fn verdict(v: editgate_core::decision::Verdict) -> Verdict {
    match v {
        editgate_core::decision::Verdict::Allow => Verdict::Allow,
        editgate_core::decision::Verdict::RequireLogin => Verdict::RequireLogin,
        editgate_core::decision::Verdict::Block => Verdict::Block,
    }
}

/// The domain verdict of a wire verdict (`None` for `VERDICT_UNSPECIFIED`).
pub fn domain_verdict(v: Verdict) -> Option<editgate_core::decision::Verdict> {
    match v {
        Verdict::Unspecified => None,
        Verdict::Allow => Some(editgate_core::decision::Verdict::Allow),
        Verdict::RequireLogin => Some(editgate_core::decision::Verdict::RequireLogin),
        Verdict::Block => Some(editgate_core::decision::Verdict::Block),
    }
}

/// The wire response for a decision about an address of which `address` is known.
pub fn to_response(d: &Decision<'_>, address: &AddressSummary<'_>, request_id: String) -> CheckResponse {
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
        reputation: address.reputation.as_ref().map(to_reputation),
    }
}

/// The wire reputation.
pub fn to_reputation(r: &editgate_core::engine::Reputation) -> generated::Reputation {
    use editgate_core::sources::spur::Field;
    let names = |f| r.names(f).to_vec();
    generated::Reputation {
        sources: r.feeds.clone(),
        tunnel_operators: names(Field::TunnelOperators),
        tunnel_types: names(Field::TunnelTypes),
        risks: names(Field::Risks),
        client_behaviors: names(Field::ClientBehaviors),
        client_proxies: names(Field::ClientProxies),
        client_types: names(Field::ClientTypes),
        client_count: r.clients,
        infrastructure: names(Field::Infrastructure),
        services: names(Field::Services),
    }
}

/// How current each source of `f.sources` is, as of `now`, with a `url` source's latest
/// confirmation from `confirmed`.
pub fn source_data(
    f: &AddressReport,
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
fn to_facts(f: &AddressReport, source_data: Vec<SourceData>) -> generated::IpFacts {
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
        reputation: f.reputation.as_ref().map(to_reputation),
    }
}

/// The wire trace.
fn to_steps(snap: &Snapshot, trace: &[Step]) -> Vec<RuleStep> {
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

/// The whole answer of `Explain` (and of `check --explain --json`): the decision, the facts
/// about the client address with how current each source's data is as of `now` (a `url`
/// source's latest confirmation from `confirmed`), and every rule visited.
pub fn to_explain(
    snap: &Snapshot,
    attempt: &Attempt,
    d: &Decision<'_>,
    now: Timestamp,
    confirmed: &dyn Fn(&str) -> Option<Timestamp>,
    request_id: String,
) -> ExplainResponse {
    let address = snap.address(&snap.facts(attempt.ip()));
    let facts = snap.report(attempt.ip());
    ExplainResponse {
        decision: Some(to_response(d, &address, request_id)),
        facts: Some(to_facts(&facts, source_data(&facts, snap, now, confirmed))),
        steps: to_steps(snap, &d.trace),
    }
}

/// Parses a `CheckRequest` from its proto3 JSON (JSON or proto field names, enums by name or
/// number, 64-bit counts as numbers or strings), with the mapping generated from the
/// `.proto`. An unknown field, an enum value the `.proto` does not define or a number out of
/// its field's range is an error naming the field (`account.kind`). The HTTP API, the console
/// and `replay` read requests through it, then [`to_attempt`], so they validate exactly like
/// gRPC.
pub fn request_from_json(body: &[u8]) -> Result<CheckRequest, FieldError> {
    // Tracking the path costs an allocation per key, so only a request that fails is parsed
    // again to find where.
    serde_json::from_slice(body).map_err(|_| {
        let mut de = serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, CheckRequest>(&mut de) {
            Err(e) => json_error(e),
            Ok(_) => match de.end() {
                Err(e) => FieldError::new("body", format!("not one JSON object: {e}")),
                Ok(()) => FieldError::new("body", "not a JSON CheckRequest"),
            },
        }
    })
}

/// A JSON error named by where it happened: the field's JSON path, or `body` when the text is
/// not JSON at all.
fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() || path == "." {
        FieldError::new("body", format!("not a JSON CheckRequest: {inner}"))
    } else {
        FieldError::new(path, inner.to_string())
    }
}

/// A JSON request checked as the HTTP port checks it, as of `now`: the attempt or the error
/// naming the field. (The fuzz target `request_json` and its replay in `cargo test` check its
/// properties.)
pub fn json_attempt(body: &[u8], now: Timestamp, limits: RequestLimits) -> Result<Attempt, FieldError> {
    to_attempt(&mut request_from_json(body)?, now, limits)
}

/// A message in proto3 JSON, every field present (the generated mapping, see `build.rs`).
/// Fails only on an enum field holding a number the `.proto` does not define.
pub fn to_json<T: serde::Serialize>(message: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, message)?;
    Ok(out)
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
            to_attempt(&mut req, Timestamp::now(), RequestLimits::default()).unwrap_err();
            assert_eq!(req.request_id, "r-1");
        }
    }

    #[test]
    fn out_of_range_numbers_and_enums_are_refused_naming_the_field() {
        for (json, field) in [
            (r#"{"account":{"kind":4294967299}}"#, "account.kind"),
            (r#"{"account":{"kind":-1}}"#, "account.kind"),
            (r#"{"account":{"kind":4}}"#, "account.kind"),
            (r#"{"account":{"kind":1.5}}"#, "account.kind"),
            (r#"{"account":{"kind":9223372036854775808}}"#, "account.kind"),
            (r#"{"account":{"kind":"ACCOUNT_KIND_ADMIN"}}"#, "account.kind"),
            (r#"{"account":{"kind":true}}"#, "account.kind"),
            (r#"{"account":{"editCount":-1}}"#, "account.editCount"),
            (
                r#"{"account":{"edit_count":"18446744073709551616"}}"#,
                "account.edit_count",
            ),
            (r#"{"account":{"editCount":1e400}}"#, "body"),
            (r#"{"account":{"registeredAt":"yesterday"}}"#, "account.registeredAt"),
            (r#"{"account":{"registeredAt":12}}"#, "account.registeredAt"),
            (r#"{"probe":1}"#, "probe"),
            (r#"{"forwardedFor":"192.0.2.1"}"#, "forwardedFor"),
            (r#"{"forwardedFor":[1]}"#, "forwardedFor[0]"),
            (r#"{"account":{"kind":1,"color":"red"}}"#, "account.color"),
            (r#"{"ip":"192.0.2.1","ip":"192.0.2.2"}"#, "body"),
            (r#"{"ip":"192.0.2.1"} {}"#, "body"),
            (r#"{"ip":"#, "body"),
            (r#"[]"#, "body"),
        ] {
            let err = request_from_json(json.as_bytes()).unwrap_err();
            assert_eq!(err.field, field, "{json}: {err}");
        }
        for (json, kind) in [
            (r#"{"account":{"kind":3}}"#, AccountKind::Registered),
            (
                r#"{"account":{"kind":"ACCOUNT_KIND_TEMPORARY"}}"#,
                AccountKind::Temporary,
            ),
        ] {
            let ok = request_from_json(json.as_bytes()).unwrap();
            assert_eq!(ok.account.unwrap().kind, kind as i32, "{json}");
        }
        let ok = request_from_json(br#"{"account":{"edit_count":"18446744073709551615"}}"#).unwrap();
        assert_eq!(ok.account.unwrap().edit_count, u64::MAX);
    }

    #[test]
    fn an_answer_carries_every_field_in_proto3_json() {
        let json = to_json(&CheckResponse {
            verdict: Verdict::Block as i32,
            ..Default::default()
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["verdict"], "VERDICT_BLOCK");
        assert_eq!(v["shadowRuleIds"], serde_json::json!([]));
        assert_eq!(v["sharedAddress"], false);
        assert_eq!(v.as_object().unwrap().len(), 11, "{v}");
        let bad = CheckResponse {
            verdict: 7,
            ..Default::default()
        };
        assert!(to_json(&bad).is_err(), "an undefined verdict is not written");
    }

    /// A Timestamp's nanos must be in 0..=999,999,999.
    #[test]
    fn negative_nanos_are_refused() {
        let mut req = request();
        req.account.as_mut().unwrap().registered_at = Some(pbjson_types::Timestamp { seconds: 1, nanos: -1 });
        let err = to_attempt(&mut req, Timestamp::now(), RequestLimits::default()).unwrap_err();
        assert_eq!(err.field, "account.registered_at.nanos", "{err:?}");
    }
}
