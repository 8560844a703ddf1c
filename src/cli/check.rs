//! `editgate check` and `editgate explain`: one decision from flags, and why.

use clap::Args;
use serde_json::{Value, json};

use super::request::RequestArgs;
use super::{ExitCode, load_or_report};
use editgate_core::decision::{Decision, Step};
use editgate_core::engine::{IpFacts, Snapshot, decide};

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
    let address = snap.address(&snap.facts(attempt.ip()));
    if args.json {
        let mut out = decision_json(&d);
        out["tags"] = json!(address.tags);
        out["sources"] = json!(address.sources);
        out["shared_address"] = json!(address.shared);
        if explain {
            out["facts"] = facts_json(snap, &snap.ip_facts(attempt.ip()), now);
            out["trace"] = trace_json(snap, &d.trace);
        }
        println!("{out}");
    } else if explain {
        print!(
            "{}",
            render_explain(snap, &snap.ip_facts(attempt.ip()), attempt.wiki(), &d, now)
        );
    } else {
        print!("{}", render_decision(&d));
        if !address.tags.is_empty() {
            println!("tags: {}", address.tags.join(", "));
        }
    }
    ExitCode::Ok
}

/// The decision as the JSON object `check --json` prints.
pub fn decision_json(d: &Decision<'_>) -> Value {
    json!({
        "verdict": d.verdict.as_str(),
        "rule_id": d.rule_id,
        "message": d.message,
        "reason": d.reason,
        "appeal": d.appeal,
        "shadow_rule_ids": d.shadow_rule_ids,
        "policy_version": d.policy_version,
    })
}

/// The IP facts as JSON.
pub fn facts_json(snap: &Snapshot, f: &IpFacts, now: jiff::Timestamp) -> Value {
    let data = source_data(snap, f, now);
    json!({
        "source_data": data.iter().map(|d| json!({
            "source": d.source, "data_time": d.data_time, "age_seconds": d.age_seconds,
            "from": d.from, "detail": d.detail, "stale": d.stale,
        })).collect::<Vec<_>>(),
        "ip": f.ip.map(|ip| ip.to_string()),
        "sources": f.sources,
        "inline_rules": f.inline_rules,
        "asn": f.asn.as_ref().map(|(n, _)| n),
        "asn_organization": f.asn.as_ref().and_then(|(_, o)| o.clone()),
        "country": f.country,
        "maxmind_flags": f.maxmind_flags.iter().map(|(s, fl)| json!({"source": s, "flags": fl})).collect::<Vec<_>>(),
    })
}

/// The trace as JSON: one object per rule visited.
pub fn trace_json(snap: &Snapshot, trace: &[Step]) -> Value {
    Value::Array(
        trace
            .iter()
            .map(|s| {
                let r = &snap.rules()[s.rule as usize];
                let (outcome, key) = (s.outcome.name(), s.outcome.key().map(|k| k.as_str()));
                json!({
                    "rule_id": r.id,
                    "origin": r.location.to_string(),
                    "outcome": outcome,
                    "key": key,
                    "detail": s.outcome.describe(),
                })
            })
            .collect(),
    )
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

/// How current the data of each source holding the address is (the CLI knows no later
/// confirmation than what the files say).
fn source_data(snap: &Snapshot, f: &IpFacts, now: jiff::Timestamp) -> Vec<crate::server::proto::SourceData> {
    crate::server::proto::source_data(f, snap, now, &|_| None)
}

/// The facts about the IP, then every rule visited, then the decision; `now` dates the data.
pub fn render_explain(snap: &Snapshot, f: &IpFacts, wiki: &str, d: &Decision<'_>, now: jiff::Timestamp) -> String {
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
    for data in source_data(snap, f, now) {
        let age = crate::server::health::human_secs(data.age_seconds);
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
