#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis (started or installed first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
export CREDIT_TEST_DATABASE_URL="${CREDIT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CREDIT_TEST_REDIS_URL="${CREDIT_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
exec cargo test --workspace --locked "$@"
