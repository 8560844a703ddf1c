//! `/explain`: the form with the CLI's inputs, then the decision, the facts and every rule
//! visited.

use maud::{Markup, html};

use super::super::{ExplainForm, FormError};
use super::{Nav, layout, rule_url, verdict_badge};
use crate::proto::{ExplainResponse, RuleStep, Verdict as WireVerdict};
use editgate_core::decision::Verdict;
use editgate_core::sources::human_secs;

/// The explain form, with the CLI's inputs.
fn explain_form(form: &ExplainForm, wikis: &[String], error: Option<&FormError>) -> Markup {
    let invalid = |field: &str| error.is_some_and(|e| e.field == field).then_some("invalid");
    let account = if form.account.is_empty() {
        "anonymous"
    } else {
        form.account.as_str()
    };
    html! {
        form.explain method="get" action="/explain" {
            div.field {
                label for="ip" { "Address" }
                input #ip name="ip" value=(form.ip) placeholder="162.247.74.201" required class=[invalid("ip")];
            }
            div.field {
                label for="wiki" { "Wiki" }
                input #wiki name="wiki" value=(form.wiki) placeholder="enwiki" list="wikis" class=[invalid("wiki")];
                datalist #wikis { @for w in wikis { option value=(w) {} } }
            }
            div.field {
                label for="account" { "Account" }
                select #account name="account" class=[invalid("account")] {
                    @for k in ["anonymous", "temporary", "registered"] {
                        option value=(k) selected[k == account] { (k) }
                    }
                }
            }
            @for (name, label, value, hint) in [
                ("edits", "Edits", &form.edits, "0"),
                ("age", "Account age", &form.age, "30d"),
                ("group", "Groups", &form.group, "sysop, bot"),
                ("right", "Rights", &form.right, "ipblock-exempt"),
                ("action", "Action", &form.action, "edit"),
                ("xff", "Forwarded for", &form.xff, "addresses, comma-separated"),
            ] {
                div.field {
                    label for=(name) { (label) }
                    input id=(name) name=(name) value=(value) placeholder=(hint) class=[invalid(name)];
                }
            }
            div.field.check {
                input #email name="email" type="checkbox" value="1" checked[form.email];
                label for="email" { "E-mail confirmed" }
            }
            div.field { button type="submit" { "Explain" } }
        }
    }
}

/// The canonical URL of an explain form, to share.
pub(super) fn explain_url(form: &ExplainForm) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("ip", &form.ip),
        ("xff", &form.xff),
        ("wiki", &form.wiki),
        ("action", &form.action),
        ("account", &form.account),
        ("edits", &form.edits),
        ("age", &form.age),
        ("group", &form.group),
        ("right", &form.right),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    if form.email {
        q.append_pair("email", "1");
    }
    format!("/explain?{}", q.finish())
}

/// `/explain`: the form, then the decision, the facts and every rule visited.
pub fn explain(
    form: &ExplainForm,
    snap: &editgate_core::engine::Snapshot,
    result: Option<&Result<ExplainResponse, FormError>>,
) -> Markup {
    let wikis: Vec<String> = snap.policy.wikis.keys().cloned().collect();
    let wikis = &wikis[..];
    let error = result.and_then(|r| r.as_ref().err());
    let body = html! {
        (explain_form(form, wikis, error))
        @if let Some(e) = error {
            p.error role="alert" {
                @if !e.field.is_empty() { code { (e.field) } ": " }
                (e.message)
            }
        }
        @if let Some(Ok(r)) = result {
            (explanation(form, snap, r))
        }
    };
    layout("Explain", Nav::Explain, "/explain", None, body)
}

pub(super) fn explanation(form: &ExplainForm, snap: &editgate_core::engine::Snapshot, r: &ExplainResponse) -> Markup {
    let d = r.decision.clone().unwrap_or_default();
    let verdict = wire_verdict(d.verdict());
    let url = explain_url(form);
    let decided_by = snap.rules().iter().position(|rule| rule.id == d.rule_id);
    html! {
        section.card.decision {
            p.big { "Verdict: " (verdict_badge(verdict)) }
            dl {
                dt { "Decided by" }
                dd {
                    @match decided_by {
                        Some(i) => { "rule " a href=(rule_url(snap, Some(&form.wiki.to_ascii_lowercase()), i)) { code { (d.rule_id) } } },
                        // A rule a reload removed since the decision: named, without a link.
                        None if !d.rule_id.is_empty() => { "rule " code { (d.rule_id) } },
                        None => "the default",
                    }
                }
                dt { "Reason" } dd { (d.reason) }
                @if !d.message.is_empty() { dt { "Message" } dd { code { (d.message) } } }
                @if !d.appeal.is_empty() {
                    dt { "Appeal" }
                    dd {
                        @if d.appeal.starts_with("https://") || d.appeal.starts_with("http://") {
                            a href=(d.appeal) rel="noreferrer noopener" { (d.appeal) }
                        } @else { (d.appeal) }
                    }
                }
                @if !d.shadow_rule_ids.is_empty() {
                    dt { "Shadow rules that matched" }
                    dd { @for id in &d.shadow_rule_ids { code { (id) } " " } }
                }
                dt { "Policy version" } dd { code { (d.policy_version) } }
                dt { "Link to this result" } dd { a href=(url) { (url) } }
            }
        }
        @if let Some(f) = &r.facts {
            h2 { "What is known about " code { (f.ip) } }
            dl {
                dt { "In sources" }
                dd {
                    @if f.sources.is_empty() { "none" }
                    @for s in &f.source_data {
                        div {
                            code { (s.source) }
                            " · data "
                            @if s.data_time.is_empty() { "of unknown age" } @else { (human_secs(s.age_seconds)) " old (" (s.detail) ")" }
                            @if s.stale { " " span.bad { "stale" } }
                        }
                    }
                }
                @if !f.inline_rules.is_empty() {
                    dt { "In the networks of rules" } dd { @for id in &f.inline_rules { code { (id) } " " } }
                }
                dt { "ASN" }
                dd { @if f.asn == 0 { "unknown" } @else { "AS" (f.asn) @if !f.asn_organization.is_empty() { " · " (f.asn_organization) } } }
                dt { "Country" } dd { @if f.country.is_empty() { "unknown" } @else { (f.country) } }
                @for m in &f.maxmind_flags {
                    dt { "MaxMind " code { (m.source) } }
                    dd { @if m.flags.is_empty() { "no flags" } @for fl in &m.flags { code { (fl) } " " } }
                }
                @if let Some(rep) = &f.reputation {
                    dt { "Spur " @for s in &rep.sources { code { (s) } " " } }
                    dd {
                        @for (key, names) in reputation_lists(rep) {
                            @if !names.is_empty() { div { (key) ": " @for n in names { code { (n) } " " } } }
                        }
                        div { "clients: " (rep.client_count) }
                    }
                }
            }
        }
        h2 { "Every rule visited, in order" }
        div.scroll {
            table {
                thead { tr { th.num { "#" } th { "Rule" } th { "Defined at" } th { "Verdict" } th { "Outcome" } th { "Deciding key" } th { "Detail" } } }
                tbody {
                    @for row in step_rows(&r.steps) {
                        @match row {
                            StepRow::One(i, s) => tr class={ "o-" (s.outcome) } {
                                td.num { (i + 1) }
                                td { code { (s.rule_id) } }
                                td { code { (s.origin) } }
                                td { (verdict_badge(wire_verdict(s.verdict()))) }
                                td { (s.outcome) }
                                td { @if !s.key.is_empty() { code { (s.key) } } }
                                td { (s.detail) }
                            },
                            StepRow::Skipped(first, n) => tr.o-skipped {
                                td.num { (first + 1) "–" (first + n) }
                                td colspan="6" { (n) " rules whose " code { "when" } " does not hold (" code { "POST /v1/explain" } " lists each)" }
                            },
                        }
                    }
                }
            }
        }
    }
}

/// A row of the explain trace: one step, or a long run of rules whose `when` failed, shown as
/// one line so that a policy of thousands of rules gives a page of the steps that matter.
pub(super) enum StepRow<'a> {
    One(usize, &'a RuleStep),
    Skipped(usize, usize),
}

/// Runs of at least this many `when-failed` steps are shown as one row.
const COLLAPSE_RUN: usize = 20;

pub(super) fn step_rows(steps: &[RuleStep]) -> Vec<StepRow<'_>> {
    let mut rows = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let run = steps[i..].iter().take_while(|s| s.outcome == "when-failed").count();
        if run >= COLLAPSE_RUN {
            rows.push(StepRow::Skipped(i, run));
            i += run;
        } else {
            rows.push(StepRow::One(i, &steps[i]));
            i += 1;
        }
    }
    rows
}

fn wire_verdict(v: WireVerdict) -> &'static str {
    match v {
        WireVerdict::Allow => Verdict::Allow.as_str(),
        WireVerdict::RequireLogin => Verdict::RequireLogin.as_str(),
        WireVerdict::Block => Verdict::Block.as_str(),
        WireVerdict::Unspecified => "unspecified",
    }
}

/// A reputation's lists with the condition keys that test them.
fn reputation_lists(r: &crate::proto::Reputation) -> [(&'static str, &[String]); 8] {
    [
        ("tunnel_operators", &r.tunnel_operators),
        ("tunnel_types", &r.tunnel_types),
        ("risks", &r.risks),
        ("client_behaviors", &r.client_behaviors),
        ("client_proxies", &r.client_proxies),
        ("client_types", &r.client_types),
        ("infrastructure", &r.infrastructure),
        ("services", &r.services),
    ]
}
