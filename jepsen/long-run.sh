#!/usr/bin/env bash
# The long fault run (not in CI): SEEDS runs of SECS seconds each, every nemesis family,
# 5 nodes, alternating the cas workload (odd seeds) and the visibility workload (even
# seeds), then one summary table. Exit status is non-zero if any run was not valid.
#
#   jepsen/long-run.sh                  # 10 seeds x 600 s, about 2 hours
#   SEEDS=3 SECS=120 jepsen/long-run.sh # a shorter one
set -uo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-10}
# openraft at info: elections, truncations and startup recovery are in the node logs.
export LOOKOUT_LOG=${LOOKOUT_LOG:-info,openraft=info}
SECS=${SECS:-600}
FIRST=${FIRST:-1}
OUT=${OUT:-target/jepsen/long}
cargo build --release -p lookout-server -p lookout-jepsen || exit 2
# Run copies, so rebuilding the workspace during the hours this takes cannot change
# the binary a restarted node comes back with.
mkdir -p "$OUT/bin"
cp target/release/lookoutd target/release/lookout-jepsen "$OUT/bin/"
git rev-parse HEAD >"$OUT/commit" 2>/dev/null
git status --porcelain --untracked-files=no | grep -q . && echo "(with uncommitted changes)" >>"$OUT/commit"
status=0
for s in $(seq "$FIRST" $((FIRST + SEEDS - 1))); do
    if [ $((s % 2)) -eq 1 ]; then workload=cas; else workload=visibility; fi
    echo "== seed $s: $workload, --nemesis all, $SECS s =="
    "$OUT/bin/lookout-jepsen" test --workload "$workload" --nemesis all --nodes 5 \
        --lookoutd "$OUT/bin/lookoutd" --time-limit "$SECS" --seed "$s" --out "$OUT/seed-$s" --keep-data \
        >"$OUT/seed-$s.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || status=1
    echo "seed $s: exit $rc ($(jq -r .verdict "$OUT/seed-$s/results.json" 2>/dev/null || echo 'no results'))"
done
{
    printf '%-5s %-10s %-8s %9s %11s %9s %7s %5s %6s %6s\n' seed workload verdict ops lin-checked stale-chk faults bit lost vis-viol
    for s in $(seq "$FIRST" $((FIRST + SEEDS - 1))); do
        r="$OUT/seed-$s/results.json"
        [ -f "$r" ] || { echo "$s: no results.json (see $OUT/seed-$s.log)"; continue; }
        jq -r --arg s "$s" '[$s, .config.workload, .verdict, .ops.total, (.linearizable.ops_checked // 0),
            (.stale_reads.checked // 0), .faults_injected, .faults_bit,
            ((.lost_writes.lost // []) | length), (.visibility.violation_count // 0)]
            | @tsv' "$r" | awk -F'\t' '{printf "%-5s %-10s %-8s %9s %11s %9s %7s %5s %6s %6s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
    done
    jq -s '{runs: length, valid: map(select(.verdict == "valid")) | length,
            ops: map(.ops.total) | add, faults: map(.faults_injected) | add,
            faults_bit: map(.faults_bit) | add}' "$OUT"/seed-*/results.json
} | tee "$OUT/summary.txt"
exit $status
