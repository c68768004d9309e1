#!/usr/bin/env bash
# Per-role limits pgmesh enforces itself: idle_in_transaction_timeout (FATAL 25P03), and
# max_transaction_age (FATAL 57014) end that client's session and roll its server connection back;
# a statement that outlives statement_timeout after the server's own timeout was lifted behind
# pgmesh's back is cancelled by pgmesh (57014); max_client_conn_per_tenant and a role's
# max_client_conn refuse the next client with 53300. Other clients carry on throughout. A role
# without limits never inherits another role's on a shared server connection.
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=2s work_mem=128MB idle_in_transaction_timeout=1s max_transaction_age=4s"
ini_set roles global_corporate_audit "server_user=audit_role statement_timeout=5min max_client_conn=2"
ini_set pgmesh max_client_conn_per_tenant 3
mesh_start
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
audit=$(mint HQ global_corporate_audit)
active="SELECT count(*) FROM pg_stat_activity WHERE usename = 'marketing_domain_role' AND state <> 'idle'"

# Idle in a transaction for longer than 1 s.
out=$(printf 'BEGIN;\nSELECT 1;\n\\! sleep 2\nSELECT 2;\n' | mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose 2>&1) || true
assert_contains "$out" "25P03" "idle in transaction"
assert_contains "$out" "idle-in-transaction timeout" "idle in transaction"
wait_log "idle-in-transaction timeout \(role regional_analyst, tenant DE\)"
assert_eq "FR" "$(mesh_psql "$fr" -c "SHOW request.jwt.claim.tenant")" "another client after the timeout"

# A transaction open for longer than 4 s, each statement within every other limit.
out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "BEGIN" \
      -c "SELECT pg_sleep(0.9)" -c "SELECT pg_sleep(0.9)" -c "SELECT pg_sleep(0.9)" \
      -c "SELECT pg_sleep(0.9)" -c "SELECT pg_sleep(0.9)" -c "SELECT pg_sleep(0.9)" 2>&1) || true
assert_contains "$out" "57014" "max_transaction_age"
assert_contains "$out" "max_transaction_age" "max_transaction_age"
sleep 0.5
assert_eq "0" "$(pg_psql -c "$active")" "server connections left busy after max_transaction_age"

# statement_timeout lifted inside a function the guard cannot see into: pgmesh cancels.
pg_psql -c "CREATE OR REPLACE FUNCTION core.lift_timeout() RETURNS text LANGUAGE sql AS \$\$ SELECT set_config('statement_timeout', '0', true) \$\$; GRANT EXECUTE ON FUNCTION core.lift_timeout() TO marketing_domain_role"
lib_at_exit 'pg_psql -c "DROP FUNCTION IF EXISTS core.lift_timeout()"'
out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "BEGIN; SELECT core.lift_timeout(); SELECT pg_sleep(3.5); COMMIT" 2>&1) || true
if [ -n "${SERVER_KEY_FILE:-}" ]; then
    # With the pgmesh extension the function cannot lift the timeout in the first place.
    assert_contains "$out" "42501" "statement_timeout lifted inside a function (extension)"
    assert_contains "$out" "can only be changed by a top-level SET" "statement_timeout lifted inside a function (extension)"
else
    assert_contains "$out" "57014" "statement past statement_timeout"
    wait_log "statement ran past statement_timeout 2000 ms \(role regional_analyst, tenant DE\)"
fi

# Connection limits: three DE sessions are the most; the audit role allows two.
sleeper() { PGPASSWORD=$1 psql -X -A -t -q -w "$(mesh_dsn "$1")" -c "SELECT pg_sleep(3)" > /dev/null 2>&1 & pids+=($!); }
pids=()
sleeper "$de"; sleeper "$de"; sleeper "$de"; sleeper "$audit"; sleeper "$audit"
sleep 1
out=$(mesh_psql "$de" -c "SELECT 1" 2>&1) || true
assert_contains "$out" "too many connections for this tenant" "fourth DE session"
out=$(mesh_psql "$audit" -c "SELECT 1" 2>&1) || true
assert_contains "$out" "too many connections for this role" "third audit session"
assert_eq "FR" "$(mesh_psql "$fr" -c "SHOW request.jwt.claim.tenant")" "FR is not limited by DE's sessions"
for p in "${pids[@]}"; do wait "$p" || true; done
assert_eq "1" "$(mesh_psql "$de" -c "SELECT 1")" "DE again once the others left"
mesh_stop

# A role without limits that shares a server role (and so server connections) with one that has
# them: through a pool of one it runs on the backend regional_analyst just used, and must find the
# server's defaults there, not regional_analyst's 2 s and 128MB; regional_analyst then gets its own back.
ini_set pgmesh default_pool_size 1
ini_set roles open_analyst "server_user=marketing_domain_role"
mesh_start
open=$(mint DE open_analyst)
want=$(pg_psql -c "SELECT current_setting('statement_timeout') || '|' || current_setting('work_mem')")
show="SELECT pg_backend_pid() || '|' || current_setting('statement_timeout') || '|' || current_setting('work_mem')"
de_saw=$(mesh_psql "$de" -c "$show")
assert_eq "2s|128MB" "${de_saw#*|}" "regional_analyst's limits"
open_saw=$(mesh_psql "$open" -c "$show")
assert_eq "${de_saw%%|*}" "${open_saw%%|*}" "the backend open_analyst ran on (pool of one)"
assert_eq "$want" "${open_saw#*|}" "open_analyst's limits after regional_analyst's transaction"
out=$(mesh_psql "$open" -c "SET statement_timeout = '1h'" -c "SHOW statement_timeout" 2>&1)
assert_contains "$out" "1h" "open_analyst raising its own statement_timeout"
assert_eq "$de_saw" "$(mesh_psql "$de" -c "$show")" "regional_analyst's limits after open_analyst's transactions"
# The same after DISCARD ALL (pgmesh sends it where a session setting may have been left
# behind), which with the extension puts regional_analyst's ceilings back.
mesh_psql "$de" -c "SELECT set_config('search_path', 'public', false)" > /dev/null
open_saw=$(mesh_psql "$open" -c "$show")
assert_eq "${de_saw%%|*}" "${open_saw%%|*}" "the backend open_analyst ran on after DISCARD ALL"
assert_eq "$want" "${open_saw#*|}" "open_analyst's limits after regional_analyst's session was discarded"
mesh_stop
