#!/usr/bin/env bash
# The Authorize benchmark (BENCHMARKS.md): starts (or installs) PostgreSQL and Redis, builds the
# load generator in release mode and runs it with its defaults. Extra arguments go to
# credit-loadgen (see `credit-loadgen --help`), e.g. `scripts/bench.sh --duration 30`.
# The run creates and drops a database credit_bench_<random> and deletes its Redis keys.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
export CREDIT_BENCH_DATABASE_URL="${CREDIT_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CREDIT_BENCH_REDIS_URL="${CREDIT_BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}"
cargo build --release --locked -p credit-loadgen
exec target/release/credit-loadgen "$@"
