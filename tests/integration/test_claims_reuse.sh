#!/usr/bin/env bash
# With the extension, a server connection keeps the claims and limits its last pgmesh.apply
# committed, and pgmesh sends nothing at a transaction start whose values it already holds (the
# cost of claims per transaction goes away for clients of one tenant and role), and a change of
# tenant costs one call (pgmesh.switch). Counted in the server's own log (log_statement = all for
# the reader role), through a pool of one in transaction pooling, with every statement checking its claims and
# rows. Then a DE client tries to leave that connection holding something other than what pgmesh
# thinks (pgmesh.clear(), a forged apply() or switch(), a function lowering its limits) for the next DE
# client, which must still find DE's claims, rows and limits.
. "$(dirname "$0")/lib.sh"
if [ -z "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: needs the pgmesh extension in the suite's cluster (make integration-ext)"
    exit 77
fi

# A schema of the reader's own, as a domain role owns its domain's schema.
pg_psql -c "ALTER ROLE marketing_domain_role SET log_statement = 'all'" \
    -c "CREATE SCHEMA claims_reuse AUTHORIZATION marketing_domain_role"
lib_at_exit 'pg_psql -c "ALTER ROLE marketing_domain_role RESET log_statement" -c "DROP SCHEMA IF EXISTS claims_reuse CASCADE"'
de_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = 'DE'")
fr_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = 'FR'")
[ "$de_rows" != "$fr_rows" ] || fail "DE and FR have the same row count: the checks below could not tell them apart"

mesh_config
ini_set pgmesh default_pool_size 1
ini_set pgmesh admin_roles mesh_admin
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
admin=$(mint ops mesh_admin)
STATE_SQL="SELECT current_setting('request.jwt.claim.tenant') || '|' || (SELECT count(*) FROM core.fct_playback_sessions) || '|' || current_setting('statement_timeout') || '|' || current_setting('work_mem')"

# run TOKEN N WANT: N transactions on one client connection, each one's state must be WANT.
run() {
    local token=$1 n=$2 want=$3 args=() i out
    for i in $(seq 1 "$n"); do args+=(-c "$STATE_SQL"); done
    out=$(mesh_psql "$token" "${args[@]}") || fail "client of $want: psql failed"
    assert_eq "$n" "$(grep -cx "$want" <<< "$out")" "transactions of a client that saw $want"
}

# pgmesh.apply and pgmesh.switch calls (switch: apply for a connection that changes tenant or role),
# from the server's log of the reader role's statements: a Query, an execute of the prepared
# pgmesh_apply, or a FunctionCall, which pg_stat_user_functions does not count.
PG_LOG=$PG_DIR/postgres.log
CALL_RE='statement: SELECT pgmesh\.apply\(|execute pgmesh_apply:|fastpath function call: "(apply|switch)"'
log_mark() { stat -c %s "$PG_LOG"; }
# calls_since MARK [REGEX]: such calls logged after MARK, once pgmesh has stopped.
calls_since() {
    mesh_stop
    tail -c +$(($1 + 1)) "$PG_LOG" | grep -cE "${2:-$CALL_RE}" || true
}

mark=$(log_mark)
mesh_start
run "$de" 10 "DE|$de_rows|30s|128MB"
run "$de" 10 "DE|$de_rows|30s|128MB"
run "$fr" 10 "FR|$fr_rows|30s|128MB"
run "$de" 5 "DE|$de_rows|30s|128MB"
# What the console counts for operators: the two changes of tenant, and every transaction that
# found its claims and limits in force (9 + 10 + 9 + 4).
IFS='|' read -r -a cols <<< "$(mesh_psql "$admin" -d pgmesh -F '|' -c 'SHOW STATS')"
assert_eq "2|32" "${cols[18]}|${cols[19]}" "SHOW STATS claim_switches|claims_held_xacts"
calls=$(calls_since "$mark")
switches=$(tail -c +$((mark + 1)) "$PG_LOG" | grep -c 'fastpath function call: "switch"' || true)
# One call per change of claims: apply for DE on the fresh connection, switch (scrub and claims in
# one) for FR and for DE again; the second DE client finds DE's values and sends nothing. 35
# transactions without reuse.
[ "$calls" -ge 1 ] || fail "the server logged no pgmesh.apply call: the count cannot be trusted"
[ "$calls" -le 3 ] || fail "35 transactions made $calls pgmesh.apply/switch calls, want at most 3 (one per change of claims)"
[ "$switches" -ge 2 ] || fail "the two changes of tenant made $switches pgmesh.switch calls, want 2"
echo "ok: 35 transactions of 3 clients (DE, DE, FR, DE) through a pool of one: $calls pgmesh.apply/switch calls, $switches of them switch"

# Attempts to change what the connection holds behind pgmesh's back, each followed by a victim
# client of the same tenant (no apply expected: the same values) that must see DE's state.
mesh_start
mesh_psql "$de" -c "CREATE OR REPLACE FUNCTION claims_reuse.f_lower() RETURNS text LANGUAGE sql AS \$\$ SET work_mem = '64kB'; SET statement_timeout = '1ms'; SELECT 'x' \$\$" ||
    fail "the reader could not create its function"
for attack in "SELECT pgmesh.clear()" "SELECT pgmesh.apply(99999, '{}', repeat('0', 64))" \
    "SELECT pgmesh.switch(99999, ARRAY['request.jwt.claim.tenant', 'FR'], repeat('0', 64))" \
    "SELECT pgmesh.apply(99999, ARRAY['request.jwt.claim.tenant', 'FR'], repeat('0', 64))" \
    "SELECT claims_reuse.f_lower()" "BEGIN; SELECT claims_reuse.f_lower(); COMMIT"; do
    out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "$attack" 2>&1) || true
    assert_contains "$out" "42501" "$attack"
    run "$de" 3 "DE|$de_rows|30s|128MB"
done
mesh_stop
echo "ok: pgmesh.clear(), forged apply() and a function lowering the limits leave the next DE client DE's claims, rows and limits"

# Claim affinity: with two idle server connections, one last used by DE and one by FR, each
# client's transactions go to the one that already holds its claims (pool.c), so alternating
# tenants cost no apply at all. Lent in plain turn (least recently used first), every other
# transaction would land on the other tenant's connection and need a clear and an apply.
ini_set pgmesh default_pool_size 2
mark=$(log_mark)
mesh_start
mesh_psql "$de" -c "SELECT pg_sleep(1)" > /dev/null &
warm_de=$!
mesh_psql "$fr" -c "SELECT pg_sleep(1)" > /dev/null &
warm_fr=$!
wait "$warm_de" "$warm_fr" || fail "the two warming clients failed"
for round in 1 2 3; do
    run "$de" 5 "DE|$de_rows|30s|128MB"
    run "$fr" 5 "FR|$fr_rows|30s|128MB"
done
calls=$(calls_since "$mark")
[ "$calls" -ge 2 ] || fail "the server logged $calls pgmesh.apply calls for two tenants: the count cannot be trusted"
[ "$calls" -le 2 ] || fail "30 transactions of DE and FR in turn over two connections made $calls pgmesh.apply/switch calls, want at most 2 (the two warming clients')"
echo "ok: 2 warming clients and 30 transactions of DE and FR in turn through a pool of two: $calls pgmesh.apply calls"
