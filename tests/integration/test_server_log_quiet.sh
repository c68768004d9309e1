#!/usr/bin/env bash
# What pgmesh runs on every transaction must not write to the server's log: an earlier design
# (SET LOCAL outside a block, then COMMIT inside a multi-statement Query) logged a WARNING per
# transaction. Several clients switching over one server connection, in simple and extended
# protocol, and in session pooling; then the PostgreSQL log must hold no WARNING or ERROR from
# the server role during that window.
. "$(dirname "$0")/lib.sh"

log=$PG_DIR/postgres.log
mark=$(wc -c < "$log")
mesh_config
ini_set pgmesh default_pool_size 1
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
script=$TEST_DIR/claims.sql
echo "SELECT 1/(current_setting('request.jwt.claim.tenant') <> '')::int;" > "$script"
mesh_start
for mode in simple extended; do
    pids=()
    for tok in "$de" "$fr"; do
        PGPASSWORD=$tok PGSSLMODE=disable timeout -k 5 60 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" \
            -U analyst -n -M "$mode" -f "$script" -c 3 -j 1 -t 50 media_analytics > "$TEST_DIR/pgbench.$mode.$tok.out" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fail "pgbench -M $mode failed"; done
    assert_contains "$(cat "$TEST_DIR"/pgbench."$mode".*.out)" "number of transactions actually processed: 150/150" "pgbench -M $mode"
done
mesh_psql "$de" -c "SET search_path = marketing" -c "SELECT 1" > /dev/null
mesh_psql "$fr" -c "SELECT 1" > /dev/null
mesh_stop
ini_set pgmesh pool_mode session
mesh_start
mesh_psql "$de" -c "SELECT 1" -c "BEGIN" -c "SELECT 1" > /dev/null
mesh_psql "$fr" -c "SELECT 1" > /dev/null
mesh_stop

noise=$(tail -c +"$((mark + 1))" "$log" | grep -E '(marketing_domain_role|audit_role)@.*(WARNING|ERROR):' || true)
[ -z "$noise" ] || fail "pgmesh's own statements reached the server log: $(printf '%s\n' "$noise" | sort | uniq -c | sort -rn | head -5)"
