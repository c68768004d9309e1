#!/usr/bin/env bash
# scripts/server-setup.sh on a plain cluster of its own, as a user would run it: --check reports
# what is missing and fails; the setup makes it pass and sets pgmesh.pinned_settings (--pinned); a
# second setup, with the pinned names in another order, changes nothing (same postgresql.auto.conf,
# same key file, no restart); then a pgmesh configured with the printed lines (server_enforcement =
# require) gives a client its claims and its role's pinned settings, while the server role it logs
# in as cannot SET a claim straight on the server (42501).
. "$(dirname "$0")/lib.sh"
once_without_extension "it starts its own cluster"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/pgcluster.sh
. "$ROOT/scripts/pgcluster.sh"
SETUP=$ROOT/scripts/server-setup.sh

PG2_DIR=$TEST_DIR/pg2
lib_at_exit 'pgcluster_stop "$PG2_DIR"'

# --- a plain cluster with the pool's server role and database, nothing of pgmesh's
chmod 755 "$TEST_DIR"
mkdir -p "$PG2_DIR"
pgcluster_start_free "$PG2_DIR" "" || fail "could not start the cluster"
PG2_PORT=$PGCLUSTER_PORT
pw=$(openssl rand -hex 16)
pgcluster_psql "$PG2_DIR" "$PG2_PORT" -d postgres \
    -c "CREATE ROLE marketing_domain_role LOGIN PASSWORD '$pw'" -c "CREATE DATABASE media_analytics" > /dev/null
(umask 077 && echo "127.0.0.1:$PG2_PORT:*:marketing_domain_role:$pw" > "$TEST_DIR/pgpass2")
su2() { pgcluster_psql "$PG2_DIR" "$PG2_PORT" -d media_analytics -A -t "$@"; }
KEY_OUT=$TEST_DIR/pgmesh-server.key
args=(--pgdata "$PG2_DIR/data" --port "$PG2_PORT" --database media_analytics --key-out "$KEY_OUT")
pinned=hash_mem_multiplier,max_parallel_workers_per_gather

echo "== --check on the plain cluster"
st=0
"$SETUP" "${args[@]}" --pinned "$pinned" --check > "$TEST_DIR/check1.log" 2>&1 || st=$?
cat "$TEST_DIR/check1.log"
assert_eq 1 "$st" "--check status on the plain cluster"
out=$(cat "$TEST_DIR/check1.log")
assert_contains "$out" "MISSING  pgmesh not preloaded" "--check"
assert_contains "$out" "MISSING  no key file: pgmesh.key_file is not set" "--check"
assert_contains "$out" "MISSING  database \"media_analytics\" has no CREATE EXTENSION pgmesh" "--check"
assert_contains "$out" "MISSING  pgmesh.pinned_settings = '' does not list $pinned" "--check"
[ ! -e "$KEY_OUT" ] && [ ! -e "$PG2_DIR/data/pgmesh.key" ] || fail "--check wrote a key file"
assert_not_contains "$(cat "$PG2_DIR/data/postgresql.auto.conf")" "pgmesh" "postgresql.auto.conf after --check"

echo "== setup"
"$SETUP" "${args[@]}" --pinned "$pinned" > "$TEST_DIR/setup1.log" 2>&1 || { cat "$TEST_DIR/setup1.log"; fail "server-setup.sh failed"; }
cat "$TEST_DIR/setup1.log"
out=$(cat "$TEST_DIR/setup1.log")
assert_contains "$out" "restarted with pg_ctl" "first setup"
assert_contains "$out" "database \"media_analytics\": CREATE EXTENSION pgmesh" "first setup"
assert_contains "$out" "server_key_file = $KEY_OUT" "printed config lines"
assert_contains "$out" "server_enforcement = require" "printed config lines"
assert_contains "$out" "ALTER SYSTEM SET pgmesh.pinned_settings = '$pinned' (was ''), and reloaded" "first setup"
assert_contains "$out" "pgmesh.pinned_settings = '$pinned'" "printed pinned settings"
key=$PG2_DIR/data/pgmesh.key
assert_eq "postgres 600" "$(stat -c '%U %a' "$key")" "owner and mode of the server's key file"
assert_eq "600" "$(stat -c '%a' "$KEY_OUT")" "mode of pgmesh's key copy"
cmp -s "$key" "$KEY_OUT" || fail "pgmesh's copy differs from the server's key"
assert_contains "$(su2 -c "SHOW shared_preload_libraries")" "pgmesh" "shared_preload_libraries"
assert_eq "$key" "$(su2 -c "SHOW pgmesh.key_file")" "pgmesh.key_file"
assert_eq "$pinned" "$(su2 -c "SHOW pgmesh.pinned_settings")" "pgmesh.pinned_settings"

echo "== --check after the setup"
"$SETUP" "${args[@]}" --pinned "$pinned" --check > "$TEST_DIR/check2.log" 2>&1 || { cat "$TEST_DIR/check2.log"; fail "--check failed after the setup"; }
cat "$TEST_DIR/check2.log"
assert_contains "$(cat "$TEST_DIR/check2.log")" "everything is in place" "--check after the setup"
assert_contains "$(cat "$TEST_DIR/check2.log")" "ok       pgmesh.pinned_settings = '$pinned' lists $pinned" "--check after the setup"

echo "== a second setup changes nothing"
cp "$PG2_DIR/data/postgresql.auto.conf" "$TEST_DIR/auto.conf.before"
cp "$key" "$TEST_DIR/key.before"
started=$(su2 -c "SELECT pg_postmaster_start_time()")
"$SETUP" "${args[@]}" --pinned max_parallel_workers_per_gather --pinned hash_mem_multiplier > "$TEST_DIR/setup2.log" 2>&1 ||
    { cat "$TEST_DIR/setup2.log"; fail "the second server-setup.sh failed"; }
cmp -s "$TEST_DIR/auto.conf.before" "$PG2_DIR/data/postgresql.auto.conf" || fail "the second setup changed postgresql.auto.conf"
cmp -s "$TEST_DIR/key.before" "$key" || fail "the second setup changed the key file"
cmp -s "$key" "$KEY_OUT" || fail "the second setup changed pgmesh's copy of the key"
assert_eq "$started" "$(su2 -c "SELECT pg_postmaster_start_time()")" "postmaster start time (no restart)"
assert_contains "$(cat "$TEST_DIR/setup2.log")" "no restart needed" "second setup"
assert_contains "$(cat "$TEST_DIR/setup2.log")" "pgmesh.pinned_settings is already '$pinned'" "second setup"
echo "same postgresql.auto.conf and key, PostgreSQL started at $started still"

echo "== pgmesh with the printed lines"
mesh_config
ini_set databases media_analytics "host=127.0.0.1 port=$PG2_PORT dbname=media_analytics passfile=$TEST_DIR/pgpass2"
ini_set pgmesh server_key_file "$KEY_OUT"
ini_set pgmesh server_enforcement require
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=30s work_mem=128MB pin.hash_mem_multiplier=1 pin.max_parallel_workers_per_gather=0"
mesh_start
tok=$(mint DE regional_analyst)
assert_eq "DE" "$(mesh_psql "$tok" -c "SELECT current_setting('request.jwt.claim.tenant')")" "tenant claim through pgmesh"
assert_eq "regional_analyst" "$(mesh_psql "$tok" -c "SELECT current_setting('request.jwt.claim.role')")" "role claim through pgmesh"
assert_eq "1/0" "$(mesh_psql "$tok" -c "SELECT current_setting('hash_mem_multiplier') || '/' || current_setting('max_parallel_workers_per_gather')")" "pinned settings through pgmesh"
out=$(PGPASSFILE=$TEST_DIR/pgpass2 timeout -k 5 30 psql -X -q -w -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$PG2_PORT dbname=media_analytics user=marketing_domain_role" \
    -c "SET request.jwt.claim.tenant = 'FR'" 2>&1) && fail "the server role set a claim: $out"
echo "$out"
assert_contains "$out" "ERROR:  42501: permission denied to set parameter \"request.jwt.claim.tenant\"" "SET straight on the server"
mesh_stop
assert_not_contains "$(cat "$MESH_LOG")" "has no pgmesh extension" "pgmesh log"
echo "ok"
