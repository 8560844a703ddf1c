//! `/`: what serves, whether it is healthy, and what the rules did in the last hour.

use jiff::Timestamp;
use maud::{Markup, html};

use super::{Nav, PAGE_RULES, encode, hour, layout, rule_url, stage_tags, time, verdict_badge};
use crate::server::Live;
use crate::server::activity::Activity;
use crate::server::health::Health;
use editgate_core::decision::Verdict;
use editgate_core::policy::Mode;
use editgate_core::sources::human_secs;

/// `/`.
pub fn overview(health: &Health, live: &Live, activity: &Activity, now: Timestamp, refresh: Option<u32>) -> Markup {
    let status = health.status.as_str();
    let minute = crate::server::activity::minute_of(now);
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
