//! `/reloads`: the last loads and reloads.

use jiff::Timestamp;
use maud::{Markup, html};

use super::{Nav, layout, time};
use crate::server::ReloadRecord;

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
