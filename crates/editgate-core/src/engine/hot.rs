//! The untraced decision path: packed per-wiki, per-account-kind rule records, rejecting on
//! the cheap tests first, with an inverted index from label to rules once a plan is large.

use jiff::Timestamp;

use super::Snapshot;
use super::compiled::{HotPlan, HotRule, WikiPlan};
use super::facts::Facts;
use super::resolve::Resolver;
use crate::attempt::Attempt;
use crate::decision::Decision;
use crate::index::Label;

/// Below this many rules a linear scan of the packed records beats the candidate merge.
const INVERTED_MIN_RULES: usize = 48;

/// The untraced path: scans the plan's packed rules for this account kind, rejecting on the
/// cheap IP tests first, and checks survivors in full. Gives the same decision as the traced
/// path (a test compares them), which reports every rule in evaluation order.
pub(super) fn decide_hot<'s>(
    snapshot: &'s Snapshot,
    plan: &'s WikiPlan,
    attempt: &Attempt,
    facts: &Facts,
    xff_facts: &[Facts],
    now: Timestamp,
    age: i64,
) -> Decision<'s> {
    let index = &snapshot.index;
    let feeds_of = |f: &Facts| snapshot.reputation.row(f.rep).map_or(0, |r| r.feeds);
    let ip_ok = |h: &HotRule, f: &Facts| {
        h.ip_in.as_ref().is_none_or(|(m, anon, feeds)| {
            f.anon & anon != 0 || (*feeds != 0 && feeds_of(f) & feeds != 0) || index.intersects(f.set, m)
        }) && h.ip.as_ref().is_none_or(|m| index.intersects(f.set, m))
            && (!h.reputation || f.rep != 0)
    };
    let hot = &plan.hot[attempt.account().kind as usize];
    let mut walk = Resolver::new(snapshot, false);
    let edits = attempt.account().edit_count;
    let visit = |h: &HotRule, walk: &mut Resolver<'s>| -> Option<Decision<'s>> {
        let forwarded = walk.forwarded();
        // Cheap rejections first, from the packed record; survivors are checked in full.
        if edits < h.edits.0
            || edits > h.edits.1
            || age < h.age.0
            || age > h.age.1
            || h.asn
                .as_ref()
                .is_some_and(|a| !facts.asn.is_some_and(|x| a.contains(&x)))
            || h.expires <= now
            || !(ip_ok(h, facts) || forwarded && h.xff && xff_facts.iter().any(|x| ip_ok(h, x)))
        {
            return None;
        }
        let outcome = snapshot.evaluate(h.rule, attempt, facts, xff_facts, age, now, forwarded);
        walk.visit(h.rule, outcome)
    };
    if hot.rules.len() < INVERTED_MIN_RULES {
        for h in &hot.rules {
            if let Some(d) = visit(h, &mut walk) {
                return d;
            }
        }
        return walk.finish(plan);
    }
    // Candidates in evaluation order: the rules without an IP requirement, plus those keyed
    // by a label the address carries (or by an anonymous source it is in).
    let labels = index.labels_of(facts.set);
    if labels.is_empty() && facts.anon == 0 && facts.rep == 0 {
        for &pos in &hot.always {
            if let Some(d) = visit(&hot.rules[pos as usize], &mut walk) {
                return d;
            }
        }
        return walk.finish(plan);
    }
    // The candidate lists (each sorted by position) are merged on the fly, smallest head
    // first, so nothing is copied or sorted and the first match stops the walk. Copying
    // `always` into a sorted buffer per decision cost more than the rule checks themselves on
    // the 1M-prefix bench (hit: 107 → 69 ns mean). An address in more lists than fit here
    // (many overlapping sources) takes a per-thread buffer instead.
    const MAX_LISTS: usize = 8;
    let mut lists: [&[u32]; MAX_LISTS] = [&[]; MAX_LISTS];
    let mut k = 0;
    let mut extra = [
        &hot.always[..],
        if facts.anon != 0 { &hot.anon[..] } else { &[] },
        if facts.rep != 0 { &hot.feeds[..] } else { &[] },
    ]
    .into_iter()
    .chain(labels.iter().map(|l| hot.keyed(*l)))
    .filter(|l| !l.is_empty());
    for l in extra.by_ref() {
        if k == MAX_LISTS {
            return decide_from_buffer(plan, hot, labels, facts, walk, visit);
        }
        lists[k] = l;
        k += 1;
    }
    let mut last = u32::MAX;
    loop {
        let mut best: Option<usize> = None;
        for (j, l) in lists[..k].iter().enumerate() {
            if let Some(&v) = l.first()
                && best.is_none_or(|b| v < lists[b][0])
            {
                best = Some(j);
            }
        }
        let Some(j) = best else { break };
        let pos = lists[j][0];
        lists[j] = &lists[j][1..];
        if pos == last {
            continue;
        }
        last = pos;
        if let Some(d) = visit(&hot.rules[pos as usize], &mut walk) {
            return d;
        }
    }
    walk.finish(plan)
}

/// [`decide_hot`] for an address in more candidate lists than its merge holds: the lists are
/// concatenated in a per-thread buffer, sorted and deduplicated.
fn decide_from_buffer<'s>(
    plan: &'s WikiPlan,
    hot: &HotPlan,
    labels: &[Label],
    facts: &Facts,
    mut walk: Resolver<'s>,
    visit: impl Fn(&HotRule, &mut Resolver<'s>) -> Option<Decision<'s>>,
) -> Decision<'s> {
    thread_local! {
        static CANDIDATES: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let decided = CANDIDATES.with(|buf| {
        let mut candidates = buf.borrow_mut();
        candidates.clear();
        candidates.extend_from_slice(&hot.always);
        for l in labels {
            candidates.extend_from_slice(hot.keyed(*l));
        }
        if facts.anon != 0 {
            candidates.extend_from_slice(&hot.anon);
        }
        if facts.rep != 0 {
            candidates.extend_from_slice(&hot.feeds);
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .iter()
            .find_map(|&pos| visit(&hot.rules[pos as usize], &mut walk))
    });
    decided.unwrap_or_else(|| walk.finish(plan))
}
