//! The console's pages, one module each (`overview`, `rules`, `explain`, `reloads`), and what
//! they share here: the frame, badges, times, charts and links to rules. maud escapes every
//! interpolated value, so operator text (rule descriptions, messages, appeal paths, error
//! messages) and request input can never become markup; the only raw HTML is the doctype.

use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use crate::server::activity::MINUTES;
use editgate_core::policy::{Mode, Rule, Stage};
use editgate_core::sources::human_secs;

mod explain;
mod overview;
mod reloads;
mod rules;

pub use explain::explain;
pub use overview::overview;
pub use reloads::reloads;
pub use rules::rules;

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

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{ExplainForm, FormError};
    use super::explain::{StepRow, explain_url, explanation, step_rows};
    use super::*;
    use crate::proto::{ExplainResponse, RuleStep, Verdict as WireVerdict};

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
