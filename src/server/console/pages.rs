//! The console's pages. maud escapes every interpolated value, so operator text (rule
//! descriptions, messages, appeal paths, error messages) and request input can never become
//! markup; the only raw HTML is the doctype.

use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use super::super::activity::{Activity, MINUTES};
use super::super::health::Health;
use super::super::{Live, ReloadRecord};
use super::{ExplainForm, FormError};
use crate::proto::{ExplainResponse, RuleStep, Verdict as WireVerdict};
use editgate_core::decision::{DecidedBy, Verdict};
use editgate_core::policy::{Mode, Rule, Stage};
use editgate_core::sources::human_secs;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Nav {
    Overview,
    Rules,
    Explain,
    Reloads,
}

/// The page frame. `here` is the page's own URL (for the "stop auto-refresh" link).
fn layout(title: &str, nav: Nav, here: &str, refresh: Option<u32>, body: Markup) -> Markup {
    let tab = |n: Nav, href: &str, label: &str| {
        html! { a href=(href) aria-current=[(n == nav).then_some("page")] { (label) } }
    };
    let sep = if here.contains('?') { '&' } else { '?' };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · editgate" }
                link rel="stylesheet" href="/console.css";
                @if refresh.is_some() {
                    script src="/console.js" defer {}
                }
            }
            body data-refresh=[refresh] {
                header {
                    nav {
                        span.brand { "editgate" }
                        (tab(Nav::Overview, "/", "Overview"))
                        (tab(Nav::Rules, "/rules", "Rules"))
                        (tab(Nav::Explain, "/explain", "Explain"))
                        (tab(Nav::Reloads, "/reloads", "Reloads"))
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                footer {
                    "editgate " (env!("CARGO_PKG_VERSION")) " · read-only console"
                    @if refresh.is_some() {
                        " · refreshes every " (refresh.unwrap_or_default()) " s · "
                        a href={ (here) (sep) "refresh=0" } { "stop" }
                    }
                }
            }
        }
    }
}

fn verdict_badge(v: &str) -> Markup {
    html! { span class={ "verdict v-" (v) } { (v) } }
}

fn time(t: Timestamp, now: Timestamp) -> Markup {
    let ago = now.duration_since(t).as_secs_f64();
    html! {
        time datetime=(t) title=(t) {
            (t.strftime("%Y-%m-%d %H:%M:%S UTC"))
            @if ago >= 1.0 { " (" (human_secs(ago)) " ago)" }
        }
    }
}

/// A small bar chart of one hour, minute by minute, newest on the right. Inline SVG with
/// presentation attributes only (the CSP allows no inline style).
pub fn sparkline(counts: &[u32; MINUTES], what: &str) -> Markup {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let (w, h) = (2 * MINUTES as u32, 24u32);
    html! {
        svg.spark viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h) role="img"
            aria-label={ (total) " " (what) " in the last hour" } {
            title { (total) " " (what) " in the last hour, per minute" }
            rect.base x="0" y=(h - 1) width=(w) height="1" {}
            @for (i, &c) in counts.iter().enumerate() {
                @if c > 0 {
                    @let bar = (u64::from(c) * u64::from(h - 2) / u64::from(max)).max(1) as u32 + 1;
                    rect.bar x=(2 * i as u32) y=(h - bar) width="2" height=(bar) {}
                }
            }
        }
    }
}

/// A sparkline with the hour's total beside it.
fn hour(counts: &[u32; MINUTES], what: &str) -> Markup {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    html! { div.hour { (sparkline(counts, what)) span.num { (total) } } }
}

/// `/`.
pub fn overview(health: &Health, live: &Live, activity: &Activity, now: Timestamp, refresh: Option<u32>) -> Markup {
    let status = health.status.as_str();
    let minute = super::super::activity::minute_of(now);
    let wikis = live.snapshot.policy.wikis.keys();
    let body = html! {
        section.card {
            p { "Status: " span class={ "status s-" (status) } { (status) } }
            @if !health.problems.is_empty() {
                ul.problems { @for p in &health.problems { li { (p) } } }
            }
            dl {
                dt { "Policy version" } dd { code { (health.policy_version) } " (generation " (health.generation) ")" }
                dt { "Loaded" } dd { (time(health.loaded_at, now)) }
                dt { "Last reload" }
                dd {
                    @match &health.last_reload {
                        Some(r) => {
                            @if r.ok { span.ok { "ok" } } @else { span.bad { "failed" } }
                            " · " (format!("{:?}", r.trigger).to_lowercase()) " · " (time(r.time, now))
                            @if let Some(e) = &r.error { pre.error { (e) } }
                            " · " a href="/reloads" { "history" }
                        }
                        None => "none",
                    }
                }
            }
        }
        h2 { "Decisions" }
        div.totals {
            @for (v, (total, hour_counts)) in Verdict::ALL.iter().zip(activity.totals(minute)) {
                div {
                    span { (verdict_badge(v.as_str())) " " strong { (total) } " since start" }
                    (hour(&hour_counts, &format!("{} decisions", v.as_str())))
                }
            }
        }
        p.note { (live.snapshot.rules().len()) " rules; counts since this process started (rules since removed or changed included, as in " code { "/metrics" } "), the chart is the last hour, newest minute on the right." }
        h2 { "Sources" }
        div.scroll {
            table {
                thead { tr {
                    th { "Source" } th { "Kind" } th.num { "Entries" } th { "Data age" } th { "Age from" }
                    th { "Stale" } th { "Last fetch" } th { "Problems" }
                } }
                tbody {
                    @for s in &health.sources {
                        tr class=[s.stale.then_some("stale")] {
                            td { code { (s.name) } }
                            td { (s.kind) }
                            td.num {
                                @if s.kind.starts_with("maxmind-") {
                                    span.note title="a database, looked up per address: it has no list of entries" { "database" }
                                } @else { (s.entries) }
                            }
                            td { @match s.data_age_seconds { Some(a) => (human_secs(a)), None => "unknown" } }
                            td { (s.data_time_detail.as_deref().unwrap_or("—")) }
                            td { @if s.stale { span.bad { "stale" } } @else { "no" } }
                            td {
                                @match &s.fetch {
                                    Some(f) => {
                                        (f.last_result.unwrap_or("—"))
                                        @if let Some(at) = f.last_attempt { " · " (time(at, now)) }
                                        @if let Some(e) = &f.last_error { br; span.bad { (e) } }
                                    }
                                    None => @if s.awaiting_first_fetch == Some(true) { "awaiting the first fetch" } @else { "—" },
                                }
                            }
                            td { @for p in &s.problems { div { (p) } } }
                        }
                    }
                }
            }
        }
        h2 { "Decision log" }
        p {
            @if health.decision_log.enabled {
                (health.decision_log.written) " lines written, " (health.decision_log.dropped) " dropped, "
                (health.decision_log.errors) " lost to errors"
                @if let Some(f) = &health.decision_log.failing { " · " span.bad { (f) } }
            } @else {
                "off (" code { "[settings.decision_log]" } ")"
            }
        }
        h2 { "Rules" }
        p {
            "In evaluation order for: "
            a href="/rules" { "any wiki without its own file" }
            @for w in wikis { " · " a href={ "/rules?wiki=" (encode(w)) } { (w) } }
        }
        div.scroll {
            table.rules {
                thead { tr { th { "Rule" } th { "Verdict" } th { "Stage" } th.num { "Decisions" } th { "Last hour" } } }
                tbody {
                    @for (i, (r, a)) in live.snapshot.rules().iter().zip(&live.counters.decided).enumerate().take(PAGE_RULES) {
                        tr class=[(r.mode == Mode::Shadow).then_some("shadow")] {
                            td {
                                a href=(rule_url(&live.snapshot, None, i)) { code { (r.id) } }
                            }
                            td { (verdict_badge(r.verdict.as_str())) }
                            td { (stage_tags(r)) }
                            td.num { (a.decided_total.get()) }
                            td { (hour(&a.decided.last_hour(minute), "decisions")) }
                        }
                    }
                }
            }
        }
        @if live.snapshot.rules().len() > PAGE_RULES {
            p.note {
                "The first " (PAGE_RULES) " of " (live.snapshot.rules().len()) " rules, in definition order; every rule is on the rules pages above."
            }
        }
        p.cta { a href="/explain" { "Explain an address →" } }
    };
    layout("Overview", Nav::Overview, "/", refresh, body)
}

/// Where a rule sits (locked, a wiki's file, global), and whether it is a shadow rule or
/// expires.
fn stage_tags(r: &Rule) -> Markup {
    html! {
        @match &r.stage {
            Stage::Locked => span.tag { "locked" },
            Stage::Wiki(w) => span.tag { "wiki " (w) },
            Stage::Global => span.tag { "global" },
        }
        @if r.mode == Mode::Shadow { " " span.tag.shadow { "shadow" } }
        @if let Some(e) = r.expires {
            " " span.tag title=(e) {
                @if e <= Timestamp::now() { "expired " } @else { "expires " }
                (e.strftime("%Y-%m-%d"))
            }
        }
    }
}

/// Rules shown on one page of `/rules` (and on the overview): a policy of 20,000 rules made
/// an 11.6 MB page, rendered while the wikis waited.
pub const PAGE_RULES: usize = 100;

/// `/rules` for `wiki` (empty: any wiki without its own file), page `page` (1-based).
fn rules_page_url(wiki: &str, page: usize) -> String {
    let mut url = "/rules".to_owned();
    let mut sep = '?';
    if !wiki.is_empty() {
        url += &format!("?wiki={}", encode(wiki));
        sep = '&';
    }
    if page > 1 {
        url += &format!("{sep}page={page}");
    }
    url
}

/// The rules page that lists rule `i` in `wiki`'s evaluation order (`None`: the rule's own
/// wiki for a wiki rule, else any wiki's), at its anchor, on the page its place falls on.
fn rule_url(snap: &editgate_core::engine::Snapshot, wiki: Option<&str>, i: usize) -> String {
    let r = &snap.rules()[i];
    let wiki = wiki.unwrap_or(match &r.stage {
        Stage::Wiki(w) => w.as_str(),
        _ => "",
    });
    let wiki = if snap.policy.wikis.contains_key(wiki) { wiki } else { "" };
    let pos = snap
        .evaluation_order(wiki)
        .rules
        .iter()
        .position(|&j| j == i)
        .unwrap_or(0);
    format!("{}#rule-{}", rules_page_url(wiki, pos / PAGE_RULES + 1), r.id)
}

/// `/rules?wiki=W`: the rules in evaluation order, with their activity.
pub fn rules(live: &Live, activity: &Activity, wiki: &str, page: usize, minute: u32, refresh: Option<u32>) -> Markup {
    let snap = &live.snapshot;
    let order = snap.evaluation_order(wiki);
    let known = snap.policy.wikis.contains_key(wiki);
    let pages = order.rules.len().div_ceil(PAGE_RULES).max(1);
    let page = page.clamp(1, pages);
    let first = (page - 1) * PAGE_RULES;
    let shown = &order.rules[first..(first + PAGE_RULES).min(order.rules.len())];
    let page_url = |p: usize| rules_page_url(wiki, p);
    let here = page_url(page);
    let title = if known {
        format!("Rules for {wiki}")
    } else {
        "Rules for any wiki without its own file".to_owned()
    };
    let by_default = &live.counters.defaults[order.default as usize];
    let body = html! {
        form.inline method="get" action="/rules" {
            label for="wiki" { "Wiki" }
            select #wiki name="wiki" {
                option value="" selected[!known] { "any wiki without its own file" }
                @for w in snap.policy.wikis.keys() {
                    option value=(w) selected[w == wiki] { (w) }
                }
            }
            button type="submit" { "Show" }
        }
        @if !wiki.is_empty() && !known {
            p.note { "No file " code { "wikis/" (wiki) ".toml" } ": this wiki gets the locked and global rules and the global default." }
        }
        p.note { "Evaluation order: locked rules of global.toml, the wiki's own file, the other global rules, then the default; the first rule that matches decides. Counts are over every wiki since start; the chart is the last hour, a bar per minute, newest on the right." }
        @if pages > 1 {
            nav.pager aria-label="pages" {
                "Rules " (first + 1) "–" (first + shown.len()) " of " (order.rules.len()) " · "
                @if page > 1 { a href=(page_url(page - 1)) rel="prev" { "← previous" } " · " }
                "page " (page) " of " (pages)
                @if page < pages { " · " a href=(page_url(page + 1)) rel="next" { "next →" } }
            }
        }
        div.scroll {
            table.rules {
                thead { tr {
                    th.num { "#" } th { "Rule" } th { "Verdict" } th { "Stage" } th { "Description" }
                    th.num { "Decisions" } th { "Last hour" } th { "Shadow matches" }
                } }
                tbody {
                    @for (pos, &i) in shown.iter().enumerate() {
                        @let pos = first + pos;
                        @let r = &snap.rules()[i];
                        @let a = &live.counters.decided[i];
                        @let shadow = live.counters.shadow.get(&r.id);
                        @let earlier = activity.of_rule(&r.id).into_iter().filter(|(v, e)| *v != r.verdict && e.decided_total.get() > 0).collect::<Vec<_>>();
                        tr id={ "rule-" (r.id) } class=[(r.mode == Mode::Shadow).then_some("shadow")] {
                            td.num { (pos + 1) }
                            td { code { (r.id) } div.where { code { (r.location) } } }
                            td { (verdict_badge(r.verdict.as_str())) }
                            td { (stage_tags(r)) }
                            td.desc { (r.description) }
                            td.num {
                                (a.decided_total.get())
                                @for (v, e) in &earlier {
                                    div.earlier title="decided before a reload changed the rule's verdict" {
                                        "+ " (e.decided_total.get()) " as " (verdict_badge(v.as_str()))
                                    }
                                }
                            }
                            td {
                                (hour(&a.decided.last_hour(minute), "decisions"))
                                @for (v, e) in &earlier {
                                    div.earlier { (hour(&e.decided.last_hour(minute), &format!("decisions as {}", v.as_str()))) }
                                }
                            }
                            td {
                                @if let Some(sh) = shadow {
                                    (sh.shadow_total.get()) " since start"
                                    (hour(&sh.shadow.last_hour(minute), "shadow matches"))
                                }
                            }
                        }
                    }
                    @if page == pages { tr.default {
                        td.num { (order.rules.len() + 1) }
                        td { "default" }
                        td { (verdict_badge(order.default.as_str())) }
                        td { span.tag { (match order.default_from {
                            DecidedBy::WikiDefault => "wiki default",
                            DecidedBy::GlobalDefault => "global default",
                            _ => "built-in default",
                        }) } }
                        td { "no rule matched" @if !order.default_message.is_empty() { " · message " code { (order.default_message) } } }
                        td.num title="decisions by any default with this verdict, over every wiki" { (by_default.decided_total.get()) }
                        td { (hour(&by_default.decided.last_hour(minute), "decisions by a default")) }
                        td {}
                    } }
                }
            }
        }
    };
    layout(&title, Nav::Rules, &here, refresh, body)
}

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
fn explain_url(form: &ExplainForm) -> String {
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

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
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

fn explanation(form: &ExplainForm, snap: &editgate_core::engine::Snapshot, r: &ExplainResponse) -> Markup {
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
enum StepRow<'a> {
    One(usize, &'a RuleStep),
    Skipped(usize, usize),
}

/// Runs of at least this many `when-failed` steps are shown as one row.
const COLLAPSE_RUN: usize = 20;

fn step_rows(steps: &[RuleStep]) -> Vec<StepRow<'_>> {
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

/// `/reloads`.
pub fn reloads(history: &[ReloadRecord], now: Timestamp, refresh: Option<u32>) -> Markup {
    let body = html! {
        p.note { "The last " (history.len()) " loads and reloads, newest first. A failed reload leaves the previous snapshot serving." }
        div.scroll {
            table {
                thead { tr { th { "Time" } th { "Trigger" } th { "Result" } th { "Version" } th.num { "Generation" } th.num { "Took" } th { "Errors" } } }
                tbody {
                    @for r in history.iter().rev() {
                        tr class=[(!r.ok).then_some("failed")] {
                            td { (time(r.time, now)) }
                            td { (format!("{:?}", r.trigger).to_lowercase()) }
                            td { @if r.ok { span.ok { "ok" } } @else { span.bad { "failed" } } }
                            td { code { (r.version) } }
                            td.num { (r.generation) }
                            td.num { (r.elapsed_ms) " ms" }
                            td { @if let Some(e) = &r.error { pre.error { (e) } } }
                        }
                    }
                }
            }
        }
    };
    layout("Reloads", Nav::Reloads, "/reloads", refresh, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of `global` alone (inline networks only, no data files).
    fn snapshot(global: &str) -> editgate_core::engine::Snapshot {
        let files = [editgate_core::policy::PolicyFile {
            path: "global.toml".into(),
            text: global.into(),
        }];
        let (policy, _) = editgate_core::policy::check(&files, Timestamp::now()).unwrap();
        editgate_core::engine::Snapshot::build(policy, Vec::new(), "test".into())
    }

    #[test]
    fn operator_text_and_input_are_escaped() {
        let form = ExplainForm {
            ip: "\"><script>alert(1)</script>".into(),
            wiki: "<b>enwiki</b>".into(),
            ..ExplainForm::default()
        };
        let err = FormError {
            field: "ip",
            message: "`<img src=x onerror=alert(1)>` is not an IP address".into(),
        };
        let page = explain(&form, &snapshot(""), Some(&Err(err))).into_string();
        assert!(!page.contains("<script>alert(1)"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("<b>enwiki"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(page.contains("&quot;&gt;"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "{page}");
    }

    #[test]
    fn a_decision_is_escaped_and_a_non_web_appeal_is_not_a_link() {
        let r = ExplainResponse {
            decision: Some(crate::proto::CheckResponse {
                verdict: WireVerdict::Block as i32,
                rule_id: "r<1>".into(),
                reason: "<em>why</em> & how".into(),
                message: "<blink>".into(),
                appeal: "javascript:alert(1)".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let page = explanation(&ExplainForm::default(), &snapshot(""), &r).into_string();
        assert!(page.contains("&lt;em&gt;why&lt;/em&gt; &amp; how"), "{page}");
        assert!(page.contains("&lt;blink&gt;"), "{page}");
        assert!(!page.contains("href=\"javascript:"), "{page}");
        assert!(page.contains("r&lt;1&gt;"), "{page}");
    }

    #[test]
    fn long_traces_collapse_and_rule_links_find_their_page() {
        let mut global = String::new();
        for i in 0..250 {
            global += &format!(
                "[[rule]]\nid = \"r{i}\"\nverdict = \"block\"\nwhen.ip = [\"10.{}.{}.0/24\"]\n\n",
                i / 256,
                i % 256
            );
        }
        let snap = snapshot(&global);
        assert_eq!(rule_url(&snap, None, 0), "/rules#rule-r0");
        assert_eq!(rule_url(&snap, None, 99), "/rules#rule-r99");
        assert_eq!(rule_url(&snap, None, 100), "/rules?page=2#rule-r100");
        assert_eq!(rule_url(&snap, Some("nowiki"), 249), "/rules?page=3#rule-r249");
        let step = |id: &str, outcome: &str| RuleStep {
            rule_id: id.into(),
            outcome: outcome.into(),
            ..Default::default()
        };
        let mut steps: Vec<RuleStep> = (0..30).map(|i| step(&format!("r{i}"), "when-failed")).collect();
        steps.push(step("r30", "unless-held"));
        steps.extend((31..35).map(|i| step(&format!("r{i}"), "when-failed")));
        steps.push(step("r35", "matched"));
        let rows = step_rows(&steps);
        assert!(matches!(rows[0], StepRow::Skipped(0, 30)));
        assert!(matches!(rows[1], StepRow::One(30, _)));
        assert_eq!(rows.len(), 1 + 1 + 4 + 1, "short runs stay visible");
    }

    #[test]
    fn the_share_link_round_trips_the_form() {
        let form = ExplainForm::from_query(Some(
            "ip=2001:db8::1&wiki=enwiki&account=registered&group=a&group=b&email=1",
        ));
        let url = explain_url(&form);
        assert!(url.starts_with("/explain?ip=2001%3Adb8%3A%3A1&wiki=enwiki"), "{url}");
        let again = ExplainForm::from_query(url.split_once('?').map(|(_, q)| q));
        assert_eq!(again, form);
    }

    #[test]
    fn a_sparkline_draws_a_bar_per_busy_minute() {
        let mut counts = [0u32; MINUTES];
        counts[0] = 1;
        counts[59] = 10;
        let svg = sparkline(&counts, "decisions").into_string();
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2, "{svg}");
        assert!(svg.contains("11 decisions in the last hour"), "{svg}");
        assert!(!svg.contains("style="), "no inline style under the CSP: {svg}");
        let empty = sparkline(&[0; MINUTES], "decisions").into_string();
        assert_eq!(empty.matches("<rect class=\"bar\"").count(), 0);
        assert_eq!(
            empty.matches("<rect class=\"base\"").count(),
            1,
            "an empty hour still shows its axis"
        );
    }
}
