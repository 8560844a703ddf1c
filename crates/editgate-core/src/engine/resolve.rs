//! Which rule decides, given what each rule visited did: the first match, with one rule for
//! forwarded-for addresses, shared by the traced and the untraced path.
//!
//! The client writes `X-Forwarded-For`, so a forwarded-for address may only make a decision
//! stricter. When the first match is an `xff` rule matching through a forwarded-for address
//! only ([`Outcome::ForwardedMatched`]), evaluation goes on with the client address alone to
//! find what it would get (the next rule matching it, or the default): the stricter of the
//! two decides, the forwarded-for match on a tie. So for every attempt, the verdict with a
//! forwarded-for chain is at least as strict as the verdict without it (a property test
//! checks this on random policies), while rules keep deciding in file order: an earlier rule
//! that matches the client address (an exemption, say) still decides before a later `xff`
//! rule is reached.
//!
//! A shadow rule is reported when, enforced, it would have decided. Before a forwarded-for
//! match that is whenever it matches; after one, only when its verdict is stricter than that
//! match's (enforced, a rule no stricter would leave the forwarded-for match deciding). Both
//! paths and `explain` apply the same test, so the answer's shadow ids are exactly the
//! trace's `shadow-matched` steps.

use super::compiled::WikiPlan;
use super::{Snapshot, default_decision, rule_decision};
use crate::decision::{Decision, Outcome, Step, Verdict};

/// Walks rules in evaluation order: feed it each rule's outcome with [`Resolver::visit`]
/// until it returns a decision, else end with [`Resolver::finish`].
pub(super) struct Resolver<'s> {
    snapshot: &'s Snapshot,
    shadow: Vec<&'s str>,
    /// Every rule visited, when tracing.
    trace: Option<Vec<Step>>,
    /// The forwarded-for match found first, while the client address's own decision is
    /// still being looked for.
    pending: Option<Pending>,
}

/// A forwarded-for match waiting for the client address's own decision.
#[derive(Debug, Clone, Copy)]
struct Pending {
    rule: u32,
    verdict: Verdict,
    /// Its place in the trace.
    step: usize,
}

impl<'s> Resolver<'s> {
    /// A walk over `snapshot`'s rules, recording every step when `trace` is set.
    pub(super) fn new(snapshot: &'s Snapshot, trace: bool) -> Self {
        Self {
            snapshot,
            shadow: Vec::new(),
            trace: trace.then(Vec::new),
            pending: None,
        }
    }

    /// Whether forwarded-for addresses may still satisfy a rule's `when`: only until the first
    /// forwarded-for match, after which the client address alone is evaluated.
    pub(super) fn forwarded(&self) -> bool {
        self.pending.is_none()
    }

    /// Records what rule `i` did; returns the decision once it is known.
    pub(super) fn visit(&mut self, i: u32, outcome: Outcome) -> Option<Decision<'s>> {
        let step = self.trace.as_ref().map_or(0, Vec::len);
        if let Some(t) = &mut self.trace {
            t.push(Step { rule: i, outcome });
        }
        let verdict = self.snapshot.policy.rules[i as usize].verdict;
        match outcome {
            Outcome::ShadowMatched if self.pending.is_some_and(|p| verdict <= p.verdict) => {
                self.relabel(step, Outcome::ShadowNotStricter);
                None
            }
            Outcome::ShadowMatched => {
                self.shadow.push(self.snapshot.policy.rules[i as usize].id.as_str());
                None
            }
            Outcome::Matched => Some(match self.pending {
                None => self.decide(i),
                Some(p) if verdict > p.verdict => {
                    self.relabel(p.step, Outcome::ForwardedOutranked);
                    self.decide(i)
                }
                Some(p) => {
                    self.relabel(step, Outcome::NotStricter);
                    self.decide(p.rule)
                }
            }),
            // Nothing is stricter than `block`: no need to look further.
            Outcome::ForwardedMatched if verdict == Verdict::Block => Some(self.decide(i)),
            Outcome::ForwardedMatched => {
                self.pending = Some(Pending { rule: i, verdict, step });
                None
            }
            _ => None,
        }
    }

    /// The decision when no rule visited decided: the default, or a forwarded-for match at
    /// least as strict as the default.
    pub(super) fn finish(mut self, plan: &'s WikiPlan) -> Decision<'s> {
        match self.pending {
            Some(p) if plan.default <= p.verdict => self.decide(p.rule),
            Some(p) => {
                self.relabel(p.step, Outcome::ForwardedOutranked);
                default_decision(self.snapshot, plan, self.shadow, self.trace.unwrap_or_default())
            }
            None => default_decision(self.snapshot, plan, self.shadow, self.trace.unwrap_or_default()),
        }
    }

    fn decide(&mut self, rule: u32) -> Decision<'s> {
        rule_decision(
            self.snapshot,
            rule,
            std::mem::take(&mut self.shadow),
            self.trace.take().unwrap_or_default(),
        )
    }

    fn relabel(&mut self, step: usize, outcome: Outcome) {
        if let Some(s) = self.trace.as_mut().and_then(|t| t.get_mut(step)) {
            s.outcome = outcome;
        }
    }
}
