#!/bin/sh
# Runs every fuzz target for SECONDS each (default 600), one after another, starting from the
# committed seeds (`seeds/<target>`) and keeping the grown corpus in `corpus/<target>`
# (not committed). A crash is saved under `artifacts/<target>/`; copy it into
# `regressions/<target>/` so that `cargo test` replays it from then on.
#
#   cargo install cargo-fuzz        # once; needs a nightly toolchain: rustup toolchain install nightly
#   fuzz/run.sh 600
set -eu
cd "$(dirname "$0")"
SECONDS_EACH=${1:-600}
for t in policy_load tor_list ip_list ip_normalize maxmind_open request_json; do
    mkdir -p "corpus/$t"
    echo "== $t for ${SECONDS_EACH}s"
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1
done
