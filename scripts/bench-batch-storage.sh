#!/usr/bin/env bash
# What PostgreSQL spends on the group commit's rows for a batch of 16 referred orders, by
# storage layout (BENCHMARKS.md, twelfth run). pgbench runs a statement shaped like the batch
# statement on databases migrated to each layout, one client, alternating the layouts round by
# round, and prints each round's average latency per batch:
#   separate  - the referral in a table of its own (migrations before 0012)
#   in-answer - the referral in its answer's row (all migrations)
#   none      - the same orders with no referral at all, for scale
#   no-event  - in-answer without the packed ReferralCreated row, for scale
# The values are generated in SQL, so absolute figures include that; compare layouts.
# Usage: scripts/bench-batch-storage.sh [rounds] [batches per round]
# synchronous_commit is off for the run, so the disk's flush does not drown the difference.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh >/dev/null
rounds="${1:-8}"
batches="${2:-2000}"
admin="${CREDIT_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work="$(mktemp -d)"
prefix="credit_batch_bench_$$"
cleanup() {
  for layout in separate in_answer; do
    psql "$admin" -qc "DROP DATABASE IF EXISTS ${prefix}_${layout} WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

database_url() { echo "${admin%/*}/${prefix}_$1"; }

# Both databases, migrated with the limits service's migrations (the separate layout stops
# before 0012).
for layout in separate in_answer; do
  psql "$admin" -qc "CREATE DATABASE ${prefix}_${layout}"
  psql "$(database_url "$layout")" -qc "CREATE SCHEMA limits"
  for migration in services/limits/migrations/postgres/*.sql; do
    version="$(basename "$migration" | cut -d_ -f1)"
    if [ "$layout" = separate ] && [ "$version" -ge 12 ]; then continue; fi
    { echo "SET search_path = limits;"; cat "$migration"; } |
      psql "$(database_url "$layout")" -q -v ON_ERROR_STOP=1 >/dev/null
  done
done

# Sixteen referred orders with increasing keys (as the service's time-ordered ids are), a
# referral document of the size the service writes, and their events packed in one row.
stamp="to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') || lpad(g::text, 3, '0')"
document="'{\"id\":\"ref_' || :k || '_' || g || '\",\"customer_id\":\"cus_01a21a4cc0af73429bd79439f2b2add4\",\"order_id\":\"order-B-2322\",\"currency\":\"CNY\",\"amount_minor\":15000,\"reasons\":[\"LIMIT_EXCEEDED\"],\"decision_id\":\"dec_01a21a4cf69e74ba98446906ef623d0f\",\"idempotency_key\":\"B-2322\",\"created_at\":\"2026-11-26T23:59:41.214807758Z\",\"created_by\":{\"principal_id\":\"prn_01a21a4cbe91756aad3d2b1ba02530c9\",\"name\":\"bench-erp\",\"roles\":[\"ORDER_ENTRY\"]},\"status\":\"Open\",\"limit_minor\":30000000,\"exposure_minor\":30000000}'"
batch="SELECT 'cus_01a21a4cc0af73429bd79439f2b2add4'::text AS customer_id, 'B-' || $stamp AS idempotency_key, \
md5(g::text) || md5(:k::text) AS fingerprint, 'dec_' || $stamp || md5(:k::text) AS decision_id, 'REFERRED'::text AS decision, \
decode(repeat(md5(g::text), 9), 'hex') AS response, now() AS created_at, 'ref_' || $stamp || md5(:k::text) AS referral_id, \
'OPEN'::text AS referral_status, ($document)::text AS referral, g AS n FROM generate_series(1, 16) g"
event=", event AS (INSERT INTO outbox (event_id, event_type, payload, packed) \
SELECT (array_agg('evt_' || :k || '_' || n ORDER BY n))[1], 'ReferralCreated', \
string_agg(decode(repeat(md5(n::text || :k), 14), 'hex'), ''::bytea ORDER BY n), true \
FROM batch WHERE decision_id IN (SELECT decision_id FROM answer) HAVING count(*) > 0 RETURNING 1)"
answer_columns="customer_id, idempotency_key, fingerprint, decision_id, decision, response, created_at"

statement() { # name, answer insert (and referral insert), event part
  printf '%s\n%s\n' '\set k random(1, 2000000000)' \
    "WITH batch AS ($batch), $2 $3 SELECT count(*) FROM answer;" >"$work/$1.sql"
}
statement separate "answer AS (INSERT INTO authorizations ($answer_columns) SELECT $answer_columns FROM batch ORDER BY n \
ON CONFLICT DO NOTHING RETURNING decision_id), referral AS (INSERT INTO referrals (id, customer_id, status, document, created_at) \
SELECT referral_id, customer_id, referral_status, referral::json, created_at FROM batch \
WHERE decision_id IN (SELECT decision_id FROM answer) RETURNING 1)" "$event"
in_answer="answer AS (INSERT INTO authorizations ($answer_columns, referral_id, referral_status, referral) \
SELECT $answer_columns, referral_id, referral_status, referral::json FROM batch ORDER BY n ON CONFLICT DO NOTHING RETURNING decision_id)"
statement in_answer "$in_answer" "$event"
statement none "answer AS (INSERT INTO authorizations ($answer_columns) SELECT $answer_columns FROM batch ORDER BY n \
ON CONFLICT DO NOTHING RETURNING decision_id)" "$event"
statement no_event "$in_answer" ""

for round in $(seq 1 "$rounds"); do
  for variant in separate:separate in_answer:in_answer none:in_answer no_event:in_answer; do
    name="${variant%%:*}"
    layout="${variant##*:}"
    url="$(database_url "$layout")"
    psql "$url" -qc "TRUNCATE limits.authorizations, limits.outbox" -c "CHECKPOINT"
    if [ "$layout" = separate ]; then psql "$url" -qc "TRUNCATE limits.referrals"; fi
    latency="$(PGOPTIONS="-c search_path=limits -c synchronous_commit=off" \
      pgbench -n -f "$work/$name.sql" -t "$batches" "$url" 2>&1 | sed -n 's/^latency average = //p')"
    echo "round $round  $name  $latency per batch of 16"
  done
done
