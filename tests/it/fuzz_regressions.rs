//! Replays the fuzzers' committed seeds and every saved crash through the same properties the
//! fuzz targets check (`editgate_testkit::fuzzing`), so `cargo test` guards them without libFuzzer.

use std::path::Path;

fn replay(dir: &Path, run: fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() && path.extension().is_none_or(|e| e != "md") {
            let bytes = std::fs::read(&path).unwrap();
            run(&bytes);
            n += 1;
        }
    }
    n
}

/// The `request_json` property with the service's own parser, as the fuzz target runs it.
pub fn request_json(data: &[u8]) {
    let now = jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(500_000);
    editgate_testkit::fuzzing::request_json(data, |text| {
        editgate::proto::json_attempt(text, now, Default::default())
    });
}

/// Every fuzz target with its property.
fn targets() -> Vec<(&'static str, editgate_testkit::fuzzing::Property)> {
    let mut all = editgate_testkit::fuzzing::TARGETS.to_vec();
    all.push(("request_json", request_json));
    assert_eq!(editgate_testkit::fuzzing::SERVICE_TARGETS, ["request_json"]);
    all
}

#[test]
fn seeds_and_regressions_hold_every_fuzz_property() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (target, run) in targets() {
        let seeds = replay(&root.join("seeds").join(target), run);
        assert!(seeds > 0, "no seeds committed for fuzz target `{target}`");
        replay(&root.join("regressions").join(target), run);
    }
}

#[test]
fn every_fuzz_target_has_a_source_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (target, _) in targets() {
        assert!(
            root.join(format!("{target}.rs")).is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
    }
}
