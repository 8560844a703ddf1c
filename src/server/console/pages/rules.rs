//! `/rules`: the rules in evaluation order, page by page, with their activity.

use maud::{Markup, html};

use super::{Nav, PAGE_RULES, hour, layout, rules_page_url, stage_tags, verdict_badge};
use crate::server::Live;
use crate::server::activity::Activity;
use editgate_core::decision::DecidedBy;
use editgate_core::policy::Mode;

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
