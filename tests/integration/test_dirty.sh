#!/usr/bin/env bash
# Clients that die mid-transaction, mid-query, between Bind and Sync, or mid-COPY FROM STDIN
# (dirty.c) must not leave a dirty server connection: with a pool of one the next clients get an
# idle connection with their own claims and none of the dead client's rows, and PostgreSQL shows
# no backend idle in transaction.
. "$(dirname "$0")/lib.sh"
export PG_SOCKET_DIR PG_PORT

mesh_config
ini_set pgmesh default_pool_size 1
mesh_start
TOK_DE=$(mint DE regional_analyst)
TOK_FR=$(mint FR regional_analyst)
export TOK_DE TOK_FR

failed=()
for kind in tx-fin tx-rst mid-query extended-nosync copy-rst copy-fin; do
    echo "== $kind"
    "$BUILD/tests/integration/dirty" "$kind" || failed+=("$kind")
    kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh died during $kind"
done

idle_in_tx() {
    pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'media_analytics'
                AND state LIKE 'idle in transaction%'"
}
n=$(idle_in_tx)
for i in $(seq 1 50); do
    [ "$n" = 0 ] && break
    sleep 0.2
    n=$(idle_in_tx)
done
assert_eq 0 "$n" "backends idle in transaction"
[ ${#failed[@]} -eq 0 ] || fail "dirty cases failed: ${failed[*]}"
mesh_stop
