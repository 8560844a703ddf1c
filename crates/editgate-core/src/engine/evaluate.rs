//! One rule against one attempt: the evaluation both decision paths share.

use jiff::Timestamp;

use super::Snapshot;
use super::compile::CompiledCond;
use super::facts::Facts;
use crate::attempt::Attempt;
use crate::decision::{CondKey, Outcome};
use crate::policy::{Cond, Mode};

impl Snapshot {
    pub(super) fn ip_keys(&self, c: &CompiledCond, f: &Facts) -> Result<(), CondKey> {
        if let Some((labels, mask)) = &c.ip_in
            && f.anon & mask == 0
            && !labels.iter().any(|l| self.index.contains(f.set, *l))
        {
            return Err(CondKey::IpIn);
        }
        if let Some(l) = c.ip
            && !self.index.contains(f.set, l)
        {
            return Err(CondKey::Ip);
        }
        if let Some(asns) = &c.cond.asn
            && !f.asn.is_some_and(|a| asns.contains(&a))
        {
            return Err(CondKey::Asn);
        }
        if let Some(cs) = &c.cond.country
            && !f.country.is_some_and(|x| cs.contains(&x))
        {
            return Err(CondKey::Country);
        }
        Ok(())
    }

    /// Evaluates a condition table; `Err` names the first key that failed.
    pub(super) fn holds(
        &self,
        c: &CompiledCond,
        xff: bool,
        a: &Attempt,
        f: &Facts,
        xf: &[Facts],
        age: i64,
    ) -> Result<(), CondKey> {
        let k = &c.cond;
        let acct = a.account();
        let any = |want: &Option<Vec<String>>, have: &[String]| {
            want.as_ref()
                .is_none_or(|w| w.iter().any(|x| have.iter().any(|h| h.eq_ignore_ascii_case(x))))
        };
        if c.account.is_some_and(|m| m & acct.kind.bit() == 0) {
            return Err(CondKey::Account);
        }
        if k.actions.as_ref().is_some_and(|w| !w.iter().any(|x| x == a.action())) {
            return Err(CondKey::Actions);
        }
        if k.wikis.as_ref().is_some_and(|w| !w.iter().any(|x| x == a.wiki())) {
            return Err(CondKey::Wikis);
        }
        if k.min_edits.is_some_and(|n| acct.edit_count < n) {
            return Err(CondKey::MinEdits);
        }
        if k.max_edits.is_some_and(|n| acct.edit_count > n) {
            return Err(CondKey::MaxEdits);
        }
        if k.min_age.is_some_and(|s| age < s) {
            return Err(CondKey::MinAge);
        }
        if k.max_age.is_some_and(|s| age > s) {
            return Err(CondKey::MaxAge);
        }
        if k.email_confirmed.is_some_and(|e| acct.email_confirmed != e) {
            return Err(CondKey::EmailConfirmed);
        }
        if !any(&k.groups, &acct.groups) {
            return Err(CondKey::Groups);
        }
        if !any(&k.rights, &acct.rights) {
            return Err(CondKey::Rights);
        }
        let first = self.ip_keys(c, f);
        if first.is_ok() || !xff {
            return first;
        }
        if xf.iter().any(|x| self.ip_keys(c, x).is_ok()) {
            Ok(())
        } else {
            first
        }
    }
}

impl Snapshot {
    /// What rule `i` does with an attempt: the one evaluation both decision paths share
    /// (the hot path only calls it for rules its packed pre-checks did not reject).
    pub(super) fn evaluate(
        &self,
        i: u32,
        attempt: &Attempt,
        facts: &Facts,
        xff: &[Facts],
        age: i64,
        now: Timestamp,
    ) -> Outcome {
        let rule = &self.policy.rules[i as usize];
        let c = &self.compiled[i as usize];
        if rule.expires.is_some_and(|t| t <= now) {
            return Outcome::Expired;
        }
        match self.holds(&c.when, rule.xff, attempt, facts, xff, age) {
            Err(key) => Outcome::WhenFailed(key),
            Ok(()) => match &c.unless {
                Some(u) if self.holds(u, rule.xff, attempt, facts, xff, age).is_ok() => {
                    Outcome::Unless(first_key(&u.cond))
                }
                _ if rule.mode == Mode::Shadow => Outcome::ShadowMatched,
                _ => Outcome::Matched,
            },
        }
    }
}

/// The first key present in a table, to say which part of an `unless` exempted.
fn first_key(c: &Cond) -> Option<CondKey> {
    [
        (c.account.is_some(), CondKey::Account),
        (c.actions.is_some(), CondKey::Actions),
        (c.wikis.is_some(), CondKey::Wikis),
        (c.min_edits.is_some(), CondKey::MinEdits),
        (c.max_edits.is_some(), CondKey::MaxEdits),
        (c.min_age.is_some(), CondKey::MinAge),
        (c.max_age.is_some(), CondKey::MaxAge),
        (c.email_confirmed.is_some(), CondKey::EmailConfirmed),
        (c.groups.is_some(), CondKey::Groups),
        (c.rights.is_some(), CondKey::Rights),
        (c.ip_in.is_some(), CondKey::IpIn),
        (c.ip.is_some(), CondKey::Ip),
        (c.asn.is_some(), CondKey::Asn),
        (c.country.is_some(), CondKey::Country),
    ]
    .into_iter()
    .find(|(present, _)| *present)
    .map(|(_, k)| k)
}
