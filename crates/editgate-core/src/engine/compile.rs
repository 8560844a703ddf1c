//! Building a [`Snapshot`]: the rules compiled against the index labels, one evaluation
//! plan per wiki, and the packed hot-path records per account kind.

use std::collections::HashMap;

use jiff::Timestamp;

use super::compiled::{
    AnonDb, CompiledCond, CompiledRule, HotPlan, HotRule, IpIn, LabelOwner, ReputationCond, WikiPlan,
};
use super::{SourceContent, SourceData, SourceInfo};
use crate::decision::{DecidedBy, Verdict};
use crate::index::{IndexBuilder, Label, LabelMask};
use crate::pace::Pacer;
use crate::policy::{Cond, Policy, Stage};
use crate::sources::SourceKind;
use crate::sources::spur::{Field, Profiles, SpurTable};

use super::Snapshot;

impl Snapshot {
    /// Compiles a checked policy and its data. `data` follows `policy.sources`; a source whose
    /// content does not fit its kind is ignored (the loader never produces one). `version`
    /// identifies the inputs (see [`crate::load`]).
    pub fn build(policy: Policy, data: Vec<SourceData>, version: String) -> Self {
        Self::build_paced(policy, data, version, &mut Pacer::none())
    }

    /// [`Snapshot::build`], giving way at `pacer`'s points (see [`crate::pace`]).
    pub fn build_paced(policy: Policy, data: Vec<SourceData>, version: String, pacer: &mut Pacer<'_>) -> Self {
        let mut builder = IndexBuilder::new();
        let mut label_owner = Vec::new();
        let mut source_label: HashMap<&str, Label> = HashMap::new();
        let mut anon_bit: HashMap<&str, u64> = HashMap::new();
        let mut anon = Vec::new();
        let mut anon_owner = Vec::new();
        let mut asn = None;
        let mut country = None;
        let mut feeds = Vec::new();
        let mut feed_owner = Vec::new();
        let mut feed_bit: HashMap<&str, u8> = HashMap::new();
        let mut sources = Vec::new();
        for (i, (def, d)) in policy.sources.iter().zip(data).enumerate() {
            let mut info = SourceInfo {
                name: def.name.clone(),
                kind: def.kind,
                entries: 0,
                time: d.time,
                max_age_secs: def.max_age_secs,
                remote: def.remote.is_some(),
                database_type: None,
                tag: def.tag.clone(),
                shared: def.shared,
            };
            match (def.kind, d.content) {
                (SourceKind::TorExits | SourceKind::IpList, SourceContent::Networks(nets)) => {
                    let label = label_owner.len() as Label;
                    label_owner.push(LabelOwner::Source(i));
                    builder.reserve_label(label);
                    info.entries = nets.len();
                    for (j, n) in nets.into_iter().enumerate() {
                        pacer.tick(j);
                        builder.add(n, label);
                    }
                    source_label.insert(&def.name, label);
                }
                (kind, SourceContent::Maxmind(db)) => {
                    info.database_type = Some(db.database_type().to_owned());
                    match kind {
                        SourceKind::MaxmindAnonymous => {
                            anon_bit.insert(&def.name, 1u64 << anon.len());
                            anon.push(AnonDb {
                                db,
                                mask: def.flag_mask(),
                            });
                            anon_owner.push(i);
                        }
                        SourceKind::MaxmindAsn => asn = Some(db),
                        SourceKind::MaxmindCountry => country = Some(db),
                        SourceKind::TorExits | SourceKind::IpList | SourceKind::SpurFeed => {}
                    }
                }
                (SourceKind::SpurFeed, SourceContent::Feed(table)) if feeds.len() < 8 => {
                    info.entries = table.len();
                    feed_bit.insert(&def.name, 1u8 << feeds.len());
                    feed_owner.push(i);
                    feeds.push(table);
                }
                // A never-fetched `url` feed starts empty.
                (SourceKind::SpurFeed, SourceContent::Networks(n)) if n.is_empty() => {
                    feed_bit.insert(&def.name, 1u8 << feeds.len());
                    feed_owner.push(i);
                    feeds.push(SpurTable::default());
                }
                (_, SourceContent::Networks(_) | SourceContent::Feed(_)) => {}
            }
            sources.push(info);
        }

        let reputation = SpurTable::merged(feeds, pacer);
        let mut compile = |c: &Cond, rule: usize| -> CompiledCond {
            let ip_in = c.ip_in.as_ref().map(|names| IpIn {
                labels: names
                    .iter()
                    .filter_map(|n| source_label.get(n.as_str()).copied())
                    .collect(),
                anon: names
                    .iter()
                    .filter_map(|n| anon_bit.get(n.as_str()))
                    .fold(0, |m, b| m | b),
                feeds: names
                    .iter()
                    .filter_map(|n| feed_bit.get(n.as_str()))
                    .fold(0, |m, b| m | b),
            });
            let ip = c.ip.as_ref().map(|nets| {
                let label = label_owner.len() as Label;
                label_owner.push(LabelOwner::Rule(rule));
                builder.reserve_label(label);
                for n in nets {
                    builder.add(*n, label);
                }
                label
            });
            CompiledCond {
                ip_in,
                ip,
                account: c.account.as_ref().map(|ks| ks.iter().fold(0, |m, k| m | k.bit())),
                reputation: c.tests_reputation().then(|| ReputationCond {
                    fields: c
                        .reputation
                        .iter()
                        .map(|(field, names)| (*field, profiles_with(&reputation.profiles, *field, names)))
                        .collect(),
                    min_clients: c.min_clients,
                }),
                cond: c.clone(),
            }
        };
        let global_appeal = policy.settings.appeal.clone().unwrap_or_default();
        let mut compiled = Vec::with_capacity(policy.rules.len());
        for (i, r) in policy.rules.iter().enumerate() {
            let wiki_appeal = match &r.stage {
                Stage::Wiki(w) => policy.wikis.get(w).and_then(|p| p.settings.appeal.clone()),
                _ => None,
            };
            let appeal = if r.verdict == Verdict::Allow {
                String::new()
            } else if !r.appeal.is_empty() {
                r.appeal.clone()
            } else {
                wiki_appeal.unwrap_or_else(|| global_appeal.clone())
            };
            compiled.push(CompiledRule {
                when: compile(&r.when, i),
                unless: r.unless.as_ref().map(|u| compile(u, i)),
                appeal,
                xff: r.xff && r.verdict != Verdict::Allow,
            });
        }

        let stage_rules = |stage: &Stage| -> Vec<u32> {
            policy
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.stage == *stage)
                .map(|(i, _)| i as u32)
                .collect()
        };
        let locked = stage_rules(&Stage::Locked);
        let global = stage_rules(&Stage::Global);
        let global_default = policy.settings.default;
        let plan = |wiki: Option<&str>| -> WikiPlan {
            let mut order = locked.clone();
            let wiki_settings = wiki.and_then(|w| policy.wikis.get(w)).map(|p| &p.settings);
            if let Some(w) = wiki {
                order.extend(stage_rules(&Stage::Wiki(w.to_owned())));
            }
            order.extend(&global);
            let (default, decided_by, reason) = match (wiki_settings.and_then(|s| s.default), global_default) {
                (Some(v), _) => (
                    v,
                    DecidedBy::WikiDefault,
                    format!(
                        "no rule matched; the default of wiki `{}` applies",
                        wiki.unwrap_or_default()
                    ),
                ),
                (None, Some(v)) => (
                    v,
                    DecidedBy::GlobalDefault,
                    "no rule matched; the global default applies".to_owned(),
                ),
                (None, None) => (Verdict::Allow, DecidedBy::BuiltinDefault, "no rule matched".to_owned()),
            };
            let message = wiki_settings
                .and_then(|s| s.default_message.clone())
                .or_else(|| policy.settings.default_message.clone())
                .unwrap_or_default();
            let appeal = if default == Verdict::Allow {
                String::new()
            } else {
                wiki_settings
                    .and_then(|s| s.appeal.clone())
                    .unwrap_or_else(|| global_appeal.clone())
            };
            let hot = crate::attempt::AccountKind::ALL.map(|kind| {
                let rules = order
                    .iter()
                    .filter(|&&i| compiled[i as usize].when.account.is_none_or(|m| m & kind.bit() != 0))
                    .map(|&i| {
                        let (r, c) = (&policy.rules[i as usize], &compiled[i as usize].when);
                        HotRule {
                            rule: i,
                            expires: r.expires.unwrap_or(Timestamp::MAX),
                            xff: compiled[i as usize].xff,
                            ip_in: c.ip_in.as_ref().map(|i| (LabelMask::new(&i.labels), i.anon, i.feeds)),
                            reputation: c.reputation.is_some(),
                            ip: c.ip.map(|l| LabelMask::new(&[l])),
                            edits: (c.cond.min_edits.unwrap_or(0), c.cond.max_edits.unwrap_or(u64::MAX)),
                            age: (c.cond.min_age.unwrap_or(i64::MIN), c.cond.max_age.unwrap_or(i64::MAX)),
                            asn: c
                                .cond
                                .asn
                                .as_ref()
                                .filter(|_| !compiled[i as usize].xff)
                                .map(|a| a.clone().into_boxed_slice()),
                        }
                    })
                    .collect();
                HotPlan::new(rules, &compiled)
            });
            WikiPlan {
                order,
                hot,
                default,
                decided_by,
                reason,
                message,
                appeal,
            }
        };
        let plans = policy.wikis.keys().map(|w| (w.clone(), plan(Some(w)))).collect();
        let fallback = plan(None);
        let has_xff = compiled.iter().any(|c| c.xff);
        Self {
            index: builder.build_paced(pacer),
            policy,
            compiled,
            plans,
            fallback,
            label_owner,
            anon,
            anon_owner,
            asn,
            country,
            reputation,
            feed_owner,
            sources,
            version,
            has_xff,
        }
    }
}

/// One bit per profile of `profiles` whose `field` has a name of `names` (ASCII case ignored).
fn profiles_with(profiles: &Profiles, field: Field, names: &[String]) -> Vec<u64> {
    let all = profiles.all();
    let mut bits = vec![0u64; all.len().div_ceil(64)];
    for (i, p) in all.iter().enumerate() {
        if p.names(field)
            .iter()
            .any(|&n| names.iter().any(|w| w.eq_ignore_ascii_case(profiles.name_of(n))))
        {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}
