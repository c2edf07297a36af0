#!/usr/bin/env bash
# The collections benchmark of issue #19 (BENCHMARKS.md, "Collections: cost independent of
# history"): one customer with 100 open invoices, one with 20,000, and PostInvoice,
# RecordPayment and one page of GetAging measured on each through the gRPC API, on PostgreSQL
# + Redis. Extra arguments go to credit-loadgen, e.g. `scripts/bench-collections.sh --large 100000`.
# The run creates and drops a database credit_bench_<random> and deletes its Redis keys.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
export CREDIT_BENCH_DATABASE_URL="${CREDIT_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CREDIT_BENCH_REDIS_URL="${CREDIT_BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}"
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p credit-loadgen
exec "$target_dir/release/credit-loadgen" --bench collections "$@"
