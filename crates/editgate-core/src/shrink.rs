//! Shrink protection, in one place: a list that lost more than its `max_shrink` of the
//! entries it serves (or all of them) is not taken, unless an operator confirmed that very
//! copy. A truncated download or an emptied file then never replaces good data.
//!
//! The rule is the same wherever a new copy meets a serving one: the server's reload and its
//! fetcher judge against the serving snapshot, `editgate fetch` against the snapshot it loads
//! from the directory (the copy a server would serve), both through [`baseline`]. This
//! module is pure: it reads a confirmation but takes the time from its caller, and the
//! service writes the confirmation (atomically, beside its other writes).

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::engine::Snapshot;
use crate::files::read_regular;
use crate::policy::SourceDef;
use crate::sidecar::sha256_hex;

/// Whether a list going from `previous` to `new` entries lost more than `max_shrink` of
/// them (a fraction, 0 to 1), or emptied: such an update is rejected unless confirmed. A
/// list that had no entries can never shrink.
pub fn shrank_too_much(previous: usize, new: usize, max_shrink: f64) -> bool {
    previous > 0 && new < previous && (new == 0 || (new as f64) < previous as f64 * (1.0 - max_shrink))
}

/// What a new copy of `def` is judged against: the entries `snapshot` serves for it, when
/// it is a list that serves any.
pub fn baseline(snapshot: &Snapshot, def: &SourceDef) -> Option<usize> {
    snapshot
        .sources()
        .iter()
        .find(|s| s.name == def.name && s.kind.has_entries())
        .map(|s| s.entries)
        .filter(|n| *n > 0)
}

/// Whether a new copy of `def` with `entries` entries shrank too much against `baseline`.
pub fn too_much(def: &SourceDef, baseline: Option<usize>, entries: usize) -> bool {
    def.kind.has_entries() && baseline.is_some_and(|p| shrank_too_much(p, entries, def.max_shrink))
}

/// Why a list that shrank from `previous` to `new` entries is rejected; `confirm` says how to
/// take it anyway.
pub fn message(def: &SourceDef, previous: usize, new: usize, confirm: &str) -> String {
    format!(
        "{new} entries, down from {previous} in the serving copy ({:.0}% fewer, more than `max_shrink = {}` allows); the serving copy stays. If the shrink is deliberate, {confirm}",
        100.0 * previous.saturating_sub(new) as f64 / previous as f64,
        def.max_shrink,
    )
}

/// The file that confirms one copy of a list despite a large shrink: `<data>.accept-shrink`.
pub fn acceptance_path(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".accept-shrink");
    data.with_file_name(name)
}

/// Whether `bytes` is the copy an operator confirmed with `editgate accept-shrink` (or
/// `editgate fetch --accept-shrink`): the confirmation names its SHA-256. Bound to the
/// content, a confirmation never lets a later, different shrink through.
pub fn accepted(data: &Path, bytes: &[u8]) -> bool {
    accepted_sha(data, &sha256_hex(bytes))
}

/// [`accepted`] for the copy whose SHA-256 (hex) is `sha`: a feed, hashed as it is read.
pub fn accepted_sha(data: &Path, sha: &str) -> bool {
    let Ok(text) = read_regular(&acceptance_path(data), 4096) else {
        return false;
    };
    let want = format!("sha256:{sha}");
    String::from_utf8_lossy(&text).lines().any(|l| l.trim() == want)
}

/// The text of the confirmation that the copy `bytes` (`entries` entries) is taken despite
/// its shrink, as of `now`.
pub fn acceptance(bytes: &[u8], entries: usize, now: Timestamp) -> String {
    acceptance_of_sha(&sha256_hex(bytes), entries, now)
}

/// [`acceptance`] for the copy whose SHA-256 (hex) is `sha`.
pub fn acceptance_of_sha(sha: &str, entries: usize, now: Timestamp) -> String {
    format!(
        "# written by `editgate accept-shrink` at {now}: this copy ({entries} entries) is taken even though it\n# shrank past `max_shrink`; a different copy needs a new confirmation\nsha256:{sha}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_past_the_limit_or_to_nothing_is_too_much() {
        assert!(!shrank_too_much(0, 0, 0.5), "nothing to lose");
        assert!(!shrank_too_much(859, 900, 0.5), "growth");
        assert!(!shrank_too_much(859, 430, 0.5), "just under half lost");
        assert!(shrank_too_much(859, 429, 0.5), "more than half lost");
        assert!(shrank_too_much(859, 185, 0.5));
        assert!(shrank_too_much(859, 0, 1.0), "empty is never a mere shrink");
        assert!(!shrank_too_much(859, 1, 1.0));
        assert!(shrank_too_much(10, 9, 0.0), "max_shrink = 0: any loss");
    }

    #[test]
    fn a_confirmation_names_exactly_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("list.txt");
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        std::fs::write(acceptance_path(&data), acceptance(b"192.0.2.1\n", 1, now)).unwrap();
        assert!(accepted(&data, b"192.0.2.1\n"));
        assert!(
            !accepted(&data, b"192.0.2.2\n"),
            "another copy needs its own confirmation"
        );
        assert!(acceptance(b"x", 1, now).contains("2027-01-15T08:00:00Z"));
    }
}
