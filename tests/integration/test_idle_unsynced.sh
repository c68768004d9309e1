#!/usr/bin/env bash
# Extended-protocol messages without Sync, then silence, through a pool of one in both pool modes:
# once the server has answered them it waits for the client, holding the server connection (and
# the implicit transaction's locks), and PostgreSQL's own idle timeouts do not start before a
# Sync. pgmesh's idle limit runs there too: the pool-wide idle_transaction_timeout (1s here) for a
# role without its own, the role's idle_in_transaction_timeout where it has one (2s). The client
# gets FATAL 25P03, the server connection is rolled back (closed: the transaction's advisory lock
# is free again), and the next client is served (tests/integration/proto_wire.py sends the
# messages by hand).
. "$(dirname "$0")/lib.sh"

PYTHON=${PYTHON:-/usr/bin/python3}
WIRE=$(dirname "$0")/proto_wire.py
mesh_config
ini_set pgmesh default_pool_size 1
ini_set pgmesh idle_transaction_timeout 1s
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=30s work_mem=128MB idle_in_transaction_timeout=2s"
busy="SELECT count(*) FROM pg_stat_activity WHERE usename IN ('audit_role', 'marketing_domain_role') AND state <> 'idle'"

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    audit=$(mint HQ global_corporate_audit)
    de=$(mint DE regional_analyst)

    # Parse and Flush; the pool-wide default applies to a role without its own limit.
    out=$(TOKEN=$audit WAIT_S=20 "$PYTHON" "$WIRE" unsynced "SELECT 1" 2>&1) || { printf '%s\n' "$out"; fail "$mode: Parse and Flush"; }
    assert_contains "$out" "FATAL 25P03 terminating connection due to idle-in-transaction timeout" "$mode: Parse and Flush"
    assert_contains "$out" "idle_transaction_timeout (1000 ms)" "$mode: Parse and Flush"
    assert_contains "$out" "ok closed" "$mode: Parse and Flush"
    assert_eq "HQ" "$(mesh_psql "$audit" -c "SHOW request.jwt.claim.tenant")" "$mode: the next client after Parse and Flush"

    # Parse, Bind, Execute and Flush holding a transaction-level lock; the role's own limit wins.
    out=$(TOKEN=$de WAIT_S=20 "$PYTHON" "$WIRE" unsynced "SELECT pg_advisory_xact_lock(4242)" execute 2>&1) \
        || { printf '%s\n' "$out"; fail "$mode: Parse, Bind, Execute and Flush"; }
    assert_contains "$out" "FATAL 25P03" "$mode: Parse, Bind, Execute and Flush"
    assert_contains "$out" "idle_in_transaction_timeout (2000 ms)" "$mode: Parse, Bind, Execute and Flush"
    wait_log "idle-in-transaction timeout \(role regional_analyst, tenant DE\)"
    assert_eq "t" "$(pg_psql -c "SELECT pg_try_advisory_xact_lock(4242)")" "$mode: the lock was released"
    assert_eq "DE" "$(mesh_psql "$de" -c "SHOW request.jwt.claim.tenant")" "$mode: the next client after Execute and Flush"
    assert_eq "0" "$(pg_psql -c "$busy")" "$mode: server connections left busy"
    mesh_stop
done
