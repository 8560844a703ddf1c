//! `editgate check` and `editgate explain`: one decision from flags, and why.

use clap::Args;
use serde_json::{Value, json};

use super::request::RequestArgs;
use super::{ExitCode, load_or_report};
use crate::proto::{self, ExplainResponse};
use editgate_core::decision::Decision;
use editgate_core::engine::{AddressReport, Snapshot, decide};
use editgate_core::sources::human_secs;

/// `editgate check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    /// The request.
    pub request: RequestArgs,
    /// Also print the facts and the trace (the same as `explain`).
    #[arg(long)]
    pub explain: bool,
}

/// Runs `check` (or `explain` when `explain` is set).
pub fn run(args: &RequestArgs, explain: bool) -> ExitCode {
    let now = args.now();
    let loaded = match load_or_report(&args.policies, now) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let snap = &loaded.snapshot;
    let attempt = match args.attempt(now) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let d = decide(snap, &attempt, now);
    if args.json {
        // The service's own answer (the CLI knows no later confirmation than the files say),
        // printed in the CLI's documented shape.
        let answer = proto::to_explain(snap, &attempt, &d, now, &|_| None, String::new());
        outln!("{}", check_json(&answer, explain));
    } else if explain {
        out!(
            "{}",
            render_explain(snap, &snap.report(attempt.ip()), attempt.wiki(), &d, now)
        );
    } else {
        out!("{}", render_decision(&d));
        let address = snap.address(&snap.facts(attempt.ip()));
        if !address.tags.is_empty() {
            outln!("tags: {}", address.tags.join(", "));
        }
    }
    ExitCode::Ok
}

/// What `check --json` prints (`explain --json` with `explain`), from the same answer the
/// service gives: proto field names, verdicts as policy files name them, `null` for facts
/// that are unknown, and a trace without each rule's verdict. Admins' scripts read this
/// shape (docs/cli.md); the service's proto3 JSON is the other one.
pub fn check_json(r: &ExplainResponse, explain: bool) -> Value {
    let verdict = |v: i32| {
        proto::Verdict::try_from(v)
            .ok()
            .and_then(proto::domain_verdict)
            .map(|v| v.as_str())
    };
    let known = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let d = r.decision.clone().unwrap_or_default();
    let mut out = json!({
        "verdict": verdict(d.verdict),
        "rule_id": d.rule_id,
        "message": d.message,
        "reason": d.reason,
        "appeal": d.appeal,
        "shadow_rule_ids": d.shadow_rule_ids,
        "policy_version": d.policy_version,
        "tags": d.tags,
        "sources": d.sources,
        "shared_address": d.shared_address,
    });
    if explain {
        let f = r.facts.clone().unwrap_or_default();
        out["facts"] = json!({
            "source_data": f.source_data.iter().map(|d| json!({
                "source": d.source, "data_time": d.data_time, "age_seconds": d.age_seconds,
                "from": d.from, "detail": d.detail, "stale": d.stale,
            })).collect::<Vec<_>>(),
            "ip": known(&f.ip),
            "sources": f.sources,
            "inline_rules": f.inline_rules,
            "asn": (f.asn != 0).then_some(f.asn),
            "asn_organization": known(&f.asn_organization),
            "country": known(&f.country),
            "maxmind_flags": f.maxmind_flags.iter().map(|m| json!({"source": m.source, "flags": m.flags})).collect::<Vec<_>>(),
        });
        out["trace"] = r
            .steps
            .iter()
            .map(|s| {
                json!({
                    "rule_id": s.rule_id,
                    "origin": s.origin,
                    "outcome": s.outcome,
                    "key": known(&s.key),
                    "detail": s.detail,
                })
            })
            .collect();
    }
    out
}

/// The decision in words.
pub fn render_decision(d: &Decision<'_>) -> String {
    let mut s = format!("verdict: {}\n", d.verdict);
    let by = if d.rule_id.is_empty() { "(default)" } else { d.rule_id };
    s += &format!("rule: {by}\nreason: {}\n", d.reason);
    if !d.message.is_empty() {
        s += &format!("message: {}\n", d.message);
    }
    if !d.appeal.is_empty() {
        s += &format!("appeal: {}\n", d.appeal);
    }
    if !d.shadow_rule_ids.is_empty() {
        s += &format!("shadow: {}\n", d.shadow_rule_ids.join(", "));
    }
    s += &format!("policy version: {}\n", d.policy_version);
    s
}

/// The facts about the IP, then every rule visited, then the decision; `now` dates the data.
pub fn render_explain(
    snap: &Snapshot,
    f: &AddressReport,
    wiki: &str,
    d: &Decision<'_>,
    now: jiff::Timestamp,
) -> String {
    let none = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(", ")
        }
    };
    let mut s = String::from("facts:\n");
    s += &format!("  ip: {}\n", f.ip.map(|ip| ip.to_string()).unwrap_or_default());
    s += &format!("  in sources: {}\n", none(&f.sources));
    // The CLI knows no later confirmation than what the files say.
    for data in proto::source_data(f, snap, now, &|_| None) {
        let age = human_secs(data.age_seconds);
        let stale = if data.stale { "; stale" } else { "" };
        s += &format!(
            "    {}: data of {} ({age} old, by {}{stale})\n",
            data.source, data.data_time, data.detail
        );
    }
    s += &format!("  in inline ranges of rules: {}\n", none(&f.inline_rules));
    match &f.asn {
        Some((n, org)) => s += &format!("  asn: AS{n} {}\n", org.clone().unwrap_or_default()),
        None => s += "  asn: (unknown)\n",
    }
    s += &format!(
        "  country: {}\n",
        f.country.clone().unwrap_or_else(|| "(unknown)".to_owned())
    );
    for (src, flags) in &f.maxmind_flags {
        let fl = if flags.is_empty() {
            "(no flags)".to_owned()
        } else {
            flags.join(", ")
        };
        s += &format!("  maxmind {src}: {fl}\n");
    }
    if let Some(r) = &f.reputation {
        s += &format!("  spur ({}): {} clients\n", r.feeds.join(", "), r.clients);
        for (field, names) in r.fields.iter().filter(|(_, n)| !n.is_empty()) {
            s += &format!("    {}: {}\n", field.key(), names.join(", "));
        }
    }
    let wiki_label = if wiki.is_empty() {
        "(no wiki)".to_owned()
    } else {
        format!("`{wiki}`")
    };
    s += &format!("rules for {wiki_label}, in evaluation order (locked, wiki, global):\n");
    if d.trace.is_empty() {
        s += "  (no rules)\n";
    }
    for (n, step) in d.trace.iter().enumerate() {
        let r = &snap.rules()[step.rule as usize];
        s += &format!(
            "  {:>2}. {} [{}] {}: {}\n",
            n + 1,
            r.id,
            r.verdict,
            r.location,
            step.outcome.describe()
        );
    }
    s += "decision:\n";
    for line in render_decision(d).lines() {
        s += &format!("  {line}\n");
    }
    s
}
