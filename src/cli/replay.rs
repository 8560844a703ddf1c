//! `editgate replay`: what a policy change would do to real traffic.
//!
//! Reads edit attempts as JSON Lines (the fields of `CheckRequest`, proto3 JSON names or the
//! original snake_case ones), decides each under the old and the new policy directory, and
//! reports the verdict counts, the transition matrix, each rule's gain or loss, and a sample
//! of changed attempts. Memory stays bounded: lines are streamed, and only counters per
//! verdict and per rule plus a capped sample are kept.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;
use serde_json::json;

use super::{ExitCode, load_or_report};
use crate::proto::{self, RequestLimits};
use editgate_core::decision::Verdict;
use editgate_core::engine::decide_untraced;

/// `editgate replay`
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The policy directory in force.
    #[arg(long, value_name = "OLD")]
    pub policies: PathBuf,
    /// The changed policy directory.
    #[arg(long, value_name = "NEW")]
    pub against: PathBuf,
    /// JSON Lines of attempts (CheckRequest fields); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub attempts: String,
    /// Evaluate as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<Timestamp>,
    /// How many changed attempts to show.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub sample: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Counts gathered over a replay.
#[derive(Debug, Default)]
struct Report {
    lines: u64,
    invalid: u64,
    invalid_examples: Vec<String>,
    old: BTreeMap<Verdict, u64>,
    new: BTreeMap<Verdict, u64>,
    /// (old verdict, new verdict) → attempts: the full matrix, diagonal included.
    transitions: BTreeMap<(Verdict, Verdict), u64>,
    /// Rule id ("" for a default) → (decisions under OLD, under NEW).
    rules: BTreeMap<String, (u64, u64)>,
    changed: u64,
    /// Of the changed, those whose verdict stayed and only the deciding rule changed.
    rule_only: u64,
    samples: Vec<serde_json::Value>,
}

/// Runs `replay`.
pub fn run(a: &ReplayArgs) -> ExitCode {
    let now = a.at.unwrap_or_else(Timestamp::now);
    let (old, new) = match (load_or_report(&a.policies, now), load_or_report(&a.against, now)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let input: Box<dyn Read> = if a.attempts == "-" {
        Box::new(std::io::stdin())
    } else {
        match std::fs::File::open(&a.attempts) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", a.attempts);
                return ExitCode::Usage;
            }
        }
    };
    let mut r = Report::default();
    for (i, line) in BufReader::new(input).lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: reading `{}` at line {}: {e}", a.attempts, i + 1);
                return ExitCode::Usage;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        r.lines += 1;
        if r.lines % 250_000 == 0 {
            eprintln!("replay: {} lines…", r.lines);
        }
        let attempt = proto::request_from_json(line.as_bytes()).and_then(|mut req| {
            proto::to_attempt(
                &mut req,
                now,
                RequestLimits {
                    max_forwarded_for: usize::MAX,
                },
            )
            .map(|at| (req.request_id, at))
        });
        let (request_id, attempt) = match attempt {
            Ok(x) => x,
            Err(e) => {
                r.invalid += 1;
                if r.invalid_examples.len() < 5 {
                    r.invalid_examples.push(format!("{}:{}: {e}", a.attempts, i + 1));
                }
                continue;
            }
        };
        let (d_old, d_new) = (
            decide_untraced(&old.snapshot, &attempt, now),
            decide_untraced(&new.snapshot, &attempt, now),
        );
        *r.old.entry(d_old.verdict).or_default() += 1;
        *r.new.entry(d_new.verdict).or_default() += 1;
        r.rules.entry(d_old.rule_id.to_owned()).or_default().0 += 1;
        r.rules.entry(d_new.rule_id.to_owned()).or_default().1 += 1;
        *r.transitions.entry((d_old.verdict, d_new.verdict)).or_default() += 1;
        if d_old.verdict != d_new.verdict || d_old.rule_id != d_new.rule_id {
            r.changed += 1;
            r.rule_only += u64::from(d_old.verdict == d_new.verdict);
            if r.samples.len() < a.sample {
                let mut sample = json!({
                    "line": i + 1,
                    "request_id": request_id,
                    "wiki": attempt.wiki(),
                    "action": attempt.action(),
                    "account": attempt.account().kind.as_str(),
                    "before": {"verdict": d_old.verdict.as_str(), "rule_id": d_old.rule_id},
                    "after": {"verdict": d_new.verdict.as_str(), "rule_id": d_new.rule_id},
                });
                // What Spur's feeds (of the new policy) say about the address, when one holds it.
                let snap = &new.snapshot;
                if let Some(rep) = snap.reputation_of(snap.facts(attempt.ip()).rep) {
                    sample["reputation"] = serde_json::to_value(proto::to_reputation(&rep)).unwrap_or_default();
                }
                r.samples.push(sample);
            }
        }
    }
    for e in &r.invalid_examples {
        eprintln!("{e}");
    }
    if a.json {
        outln!("{}", to_json(&r, old.snapshot.version(), new.snapshot.version()));
    } else {
        out!("{}", to_text(&r, old.snapshot.version(), new.snapshot.version()));
    }
    ExitCode::Ok
}

/// A sample's reputation in a few words: `; Spur: NORD_VPN (VPN), risks TUNNEL, 12 clients`.
fn reputation_text(r: &serde_json::Value) -> String {
    if r.is_null() {
        return String::new();
    }
    let list = |key: &str| -> Vec<&str> {
        r[key]
            .as_array()
            .map_or_else(Vec::new, |a| a.iter().filter_map(|v| v.as_str()).collect())
    };
    let mut parts = Vec::new();
    let operators = list("tunnelOperators");
    if !operators.is_empty() {
        parts.push(format!("{} ({})", operators.join(", "), list("tunnelTypes").join(", ")));
    }
    let risks = list("risks");
    if !risks.is_empty() {
        parts.push(format!("risks {}", risks.join(", ")));
    }
    if let Some(n) = r["clientCount"].as_u64().filter(|n| *n > 0) {
        parts.push(format!("{n} clients"));
    }
    format!(
        "; Spur: {}",
        if parts.is_empty() {
            "listed".to_owned()
        } else {
            parts.join(", ")
        }
    )
}

fn rule_name(id: &str) -> &str {
    if id.is_empty() { "(default)" } else { id }
}

fn to_json(r: &Report, old_version: &str, new_version: &str) -> serde_json::Value {
    let counts = |m: &BTreeMap<Verdict, u64>| -> serde_json::Value {
        Verdict::ALL
            .iter()
            .map(|v| (v.as_str().to_owned(), json!(m.get(v).copied().unwrap_or(0))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "lines": r.lines,
        "invalid": r.invalid,
        "old": {"policy_version": old_version, "verdicts": counts(&r.old)},
        "new": {"policy_version": new_version, "verdicts": counts(&r.new)},
        "changed": r.changed,
        "changed_verdict": r.changed - r.rule_only,
        "changed_rule_only": r.rule_only,
        "matrix": Verdict::ALL.iter().map(|f| (f.as_str().to_owned(), Verdict::ALL.iter().map(|t| (t.as_str().to_owned(), json!(r.transitions.get(&(*f, *t)).copied().unwrap_or(0)))).collect::<serde_json::Map<_, _>>().into())).collect::<serde_json::Map<String, serde_json::Value>>(),
        "transitions": r.transitions.iter().filter(|((f, t), _)| f != t).map(|((f, t), n)| json!({"from": f.as_str(), "to": t.as_str(), "count": n})).collect::<Vec<_>>(),
        "rules": r.rules.iter().filter(|(_, (o, n))| o != n).map(|(id, (o, n))| json!({"rule_id": id, "old": o, "new": n, "delta": *n as i64 - *o as i64})).collect::<Vec<_>>(),
        "samples": r.samples,
    })
}

fn to_text(r: &Report, old_version: &str, new_version: &str) -> String {
    let mut s = format!(
        "replayed {} attempts ({} invalid, skipped); {} changed ({} verdict{}, {} only the deciding rule); policy {old_version} → {new_version}\n\nverdict          old        new\n",
        r.lines,
        r.invalid,
        r.changed,
        r.changed - r.rule_only,
        super::plural((r.changed - r.rule_only) as usize),
        r.rule_only,
    );
    for v in Verdict::ALL {
        s += &format!(
            "{:<14} {:>8} {:>10}\n",
            v.as_str(),
            r.old.get(&v).unwrap_or(&0),
            r.new.get(&v).unwrap_or(&0)
        );
    }
    s += "\ntransition matrix (rows: old verdict, columns: new)\n";
    s += &format!("  {:<14}", "");
    for t in Verdict::ALL {
        s += &format!("{:>14}", t.as_str());
    }
    s += "\n";
    for f in Verdict::ALL {
        s += &format!("  {:<14}", f.as_str());
        for t in Verdict::ALL {
            s += &format!("{:>14}", r.transitions.get(&(f, t)).copied().unwrap_or(0));
        }
        s += "\n";
    }
    s += &format!("\nchanged verdicts ({})\n", r.changed - r.rule_only);
    let changed: Vec<_> = r.transitions.iter().filter(|((f, t), _)| f != t).collect();
    if changed.is_empty() {
        s += "  (none)\n";
    }
    for ((f, t), n) in changed {
        s += &format!("  {:<30} {n:>8}\n", format!("{f} → {t}"));
    }
    s += "\nrules that gained or lost decisions\n";
    let mut any = false;
    for (id, (o, n)) in r.rules.iter().filter(|(_, (o, n))| o != n) {
        any = true;
        s += &format!(
            "  {:<32} {o:>8} → {n:<8} ({:+})\n",
            rule_name(id),
            *n as i64 - *o as i64
        );
    }
    if !any {
        s += "  (none)\n";
    }
    if !r.samples.is_empty() {
        s += &format!("\nsample of changed attempts ({} of {})\n", r.samples.len(), r.changed);
        for x in &r.samples {
            s += &format!(
                "  line {:<8} {:<10} {:<10} {:<10} {} ({}) → {} ({}){}\n",
                x["line"],
                x["wiki"].as_str().unwrap_or(""),
                x["action"].as_str().unwrap_or(""),
                x["account"].as_str().unwrap_or(""),
                x["before"]["verdict"].as_str().unwrap_or(""),
                rule_name(x["before"]["rule_id"].as_str().unwrap_or("")),
                x["after"]["verdict"].as_str().unwrap_or(""),
                rule_name(x["after"]["rule_id"].as_str().unwrap_or("")),
                reputation_text(&x["reputation"]),
            );
        }
    }
    s
}
