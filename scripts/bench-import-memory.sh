#!/usr/bin/env bash
# scripts/bench-import-memory.sh BINARY CSV PORT: a fresh embedded suite, one import, the suite's peak RSS.
set -euo pipefail
binary=$1; csv=$2; port=$3
data=$(mktemp -d)
export CREDIT_DATA_DIR=$data CREDIT_LISTEN_ADDR=127.0.0.1:$port RUST_LOG=warn
"$binary" serve >"$data/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -f "$data/admin.token" ] && break; sleep 0.2; done
sleep 1
before=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
start=$(date +%s.%N)
"$binary" import "$csv" >"$data/import.out" 2>&1 || true
end=$(date +%s.%N)
after=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
rss=$(grep VmRSS /proc/$pid/status | awk '{print $2}')
kill $pid; wait $pid 2>/dev/null || true
echo "csv=$(basename $csv) hwm_before_import_kib=$before hwm_after_import_kib=$after rss_end_kib=$rss seconds=$(echo "$end - $start" | bc)"
grep -iE "created|rows" "$data/import.out" | head -4
rm -rf "$data"
