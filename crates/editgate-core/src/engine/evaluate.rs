//! One rule against one attempt: the evaluation both decision paths share.

use jiff::Timestamp;

use super::Snapshot;
use super::compiled::CompiledCond;
use super::facts::Facts;
use crate::attempt::Attempt;
use crate::decision::{CondKey, Outcome};
use crate::policy::{Cond, Mode};

impl Snapshot {
    pub(super) fn ip_keys(&self, c: &CompiledCond, f: &Facts) -> Result<(), CondKey> {
        let row = self.reputation.row(f.rep);
        if let Some(i) = &c.ip_in
            && f.anon & i.anon == 0
            && row.is_none_or(|r| r.feeds & i.feeds == 0)
            && !i.labels.iter().any(|l| self.index.contains(f.set, *l))
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
        if let Some(r) = &c.reputation {
            match row {
                None => return Err(r.first_key()),
                Some(row) => {
                    if let Some(key) = r.fails(row) {
                        return Err(key);
                    }
                }
            }
        }
        Ok(())
    }

    /// Evaluates a condition table; `Err` names the first key that failed. With `forwarded`,
    /// the IP keys may also hold for one forwarded-for address of `xf` (all of them for the
    /// same address); `Ok(true)` says they held for a forwarded-for address only.
    pub(super) fn holds(
        &self,
        c: &CompiledCond,
        forwarded: bool,
        a: &Attempt,
        f: &Facts,
        xf: &[Facts],
        age: i64,
    ) -> Result<bool, CondKey> {
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
        match self.ip_keys(c, f) {
            Ok(()) => Ok(false),
            Err(_) if forwarded && xf.iter().any(|x| self.ip_keys(c, x).is_ok()) => Ok(true),
            Err(key) => Err(key),
        }
    }
}

impl Snapshot {
    /// What rule `i` does with an attempt: the one evaluation both decision paths share
    /// (the hot path only calls it for rules its packed pre-checks did not reject).
    ///
    /// Forwarded-for addresses (`xff`) are written by the client, so they may only make a
    /// decision stricter: with `forwarded`, they may satisfy the `when` of a refusing rule
    /// with `xff = true` ([`Outcome::ForwardedMatched`]); they never satisfy an `unless`
    /// (it tests the client address only) and never an `allow` rule (the checker refuses
    /// `xff` there; [`super::compile`] ignores it too). The caller passes `forwarded = false`
    /// once a forwarded-for match was found, to find the client address's own decision.
    #[allow(clippy::too_many_arguments)] // the attempt, its facts and the clock, as in `decide_with_facts`
    pub(super) fn evaluate(
        &self,
        i: u32,
        attempt: &Attempt,
        facts: &Facts,
        xff: &[Facts],
        age: i64,
        now: Timestamp,
        forwarded: bool,
    ) -> Outcome {
        let rule = &self.policy.rules[i as usize];
        let c = &self.compiled[i as usize];
        if rule.expires.is_some_and(|t| t <= now) {
            return Outcome::Expired;
        }
        let forwarded = forwarded && c.xff;
        match self.holds(&c.when, forwarded, attempt, facts, xff, age) {
            Err(key) => Outcome::WhenFailed(key),
            Ok(through_forwarded) => match &c.unless {
                Some(u) if self.holds(u, false, attempt, facts, &[], age).is_ok() => {
                    Outcome::Unless(first_key(&u.cond))
                }
                _ if rule.mode == Mode::Shadow => Outcome::ShadowMatched,
                _ if through_forwarded => Outcome::ForwardedMatched,
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
    .or_else(|| c.reputation.first().map(|(f, _)| CondKey::Reputation(*f)))
    .or_else(|| c.min_clients.map(|_| CondKey::MinClients))
}
