#!/usr/bin/env bash
# pgbench through pgmesh in transaction pooling in its three query modes (simple, extended, and
# prepared: named statements that must exist on whichever server connection runs the transaction):
# -S, a read-write TPC-B-like run, and a custom script whose every transaction fails unless it
# sees its own token's tenant (also pipelined, and reconnecting per transaction), run for two
# tenants at once in all three modes on a pool of two shared server connections. Then prepared
# statements in session pooling, where they stay on the client's own server connection.
. "$(dirname "$0")/lib.sh"

# pgbench's tables in media_analytics, readable (and writable) by both server roles.
timeout 120 "$PGBIN/pgbench" -i -s 1 -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres media_analytics \
    > "$TEST_DIR/pgbench-init.txt" 2>&1 || { cat "$TEST_DIR/pgbench-init.txt"; fail "pgbench -i"; }
pg_psql -c "GRANT SELECT, INSERT, UPDATE ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO marketing_domain_role, audit_role"

mesh_config
mesh_start
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)

# run_pgbench NAME TOKEN EXPECTED_PROCESSED [pgbench args]: runs, then checks its report.
run_pgbench() {
    local name=$1 token=$2 expected=$3
    shift 3
    local out=$TEST_DIR/pgbench-$name.txt st=0
    PGPASSWORD=$token PGSSLMODE=disable timeout -k 5 180 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" \
        -U analyst "$@" media_analytics > "$out" 2>&1 || st=$?
    if [ "$st" != 0 ]; then
        tail -n 30 "$out"
        fail "pgbench $name exited with status $st"
    fi
    local report
    report=$(cat "$out")
    assert_contains "$report" "number of transactions actually processed: $expected/$expected" "pgbench $name"
    if grep -q 'number of failed transactions' "$out"; then
        assert_contains "$report" "number of failed transactions: 0 " "pgbench $name"
    fi
    assert_not_contains "$report" "aborted" "pgbench $name"
    assert_not_contains "$report" "ERROR" "pgbench $name"
    echo "pgbench $name: $(grep -E '^tps' "$out" | head -n 1)"
}

run_pgbench select-simple "$de" 1600 -n -S -c 8 -j 2 -t 200
run_pgbench select-extended "$de" 1600 -n -S -M extended -c 8 -j 2 -t 200
run_pgbench select-prepared "$de" 1600 -n -S -M prepared -c 8 -j 2 -t 200
run_pgbench tpcb-simple "$de" 400 -n -c 4 -j 2 -t 100
# -M prepared with scripts that hold a transaction open gets a thread per client (-j = -c): pgbench
# prepares each statement on first use with a blocking PQprepare, which stops every client of its
# thread while it waits for a server connection; if the clients holding all of them in open
# transactions sit in threads stopped that way, nothing moves (any pool smaller than -c does this).
run_pgbench tpcb-prepared "$fr" 400 -n -M prepared -c 4 -j 4 -t 100

# The tenant check: a transaction that sees another tenant's (or no) claim divides by zero.
cat > "$TEST_DIR/tenant-DE.sql" <<'EOF'
SELECT 1 / (current_setting('request.jwt.claim.tenant') = 'DE')::int;
SELECT 1 / (count(*) = 3)::int FROM core.fct_playback_sessions;
BEGIN;
SELECT 1 / (current_setting('request.jwt.claim.tenant') = 'DE' AND current_setting('request.jwt.claim.role') = 'regional_analyst')::int;
SELECT 1 / (min(country_code) = 'DE' AND max(country_code) = 'DE')::int FROM core.fct_playback_sessions;
END;
EOF
sed 's/DE/FR/g; s/= 3)/= 2)/' "$TEST_DIR/tenant-DE.sql" > "$TEST_DIR/tenant-FR.sql"

run_pgbench tenant-alone "$de" 800 -n -f "$TEST_DIR/tenant-DE.sql" -c 4 -j 2 -t 200
run_pgbench tenant-alone-extended "$fr" 800 -n -M extended -f "$TEST_DIR/tenant-FR.sql" -c 4 -j 2 -t 200
run_pgbench tenant-alone-prepared "$de" 800 -n -M prepared -f "$TEST_DIR/tenant-DE.sql" -c 4 -j 4 -t 200

# A new connection per transaction (-C): every login's claims reach its one transaction.
run_pgbench tenant-reconnect "$fr" 200 -n -C -f "$TEST_DIR/tenant-FR.sql" -c 4 -j 2 -t 50

# Pipelined queries (extended protocol, one Sync for several statements).
cat > "$TEST_DIR/tenant-DE-pipeline.sql" <<'EOF'
\startpipeline
SELECT 1 / (current_setting('request.jwt.claim.tenant') = 'DE')::int;
SELECT 1 / (count(*) = 3)::int FROM core.fct_playback_sessions;
SELECT 1 / (min(country_code) = 'DE')::int FROM core.fct_playback_sessions;
\endpipeline
EOF
run_pgbench tenant-pipeline "$de" 800 -n -M extended -f "$TEST_DIR/tenant-DE-pipeline.sql" -c 4 -j 2 -t 200
run_pgbench tenant-pipeline-prepared "$de" 800 -n -M prepared -f "$TEST_DIR/tenant-DE-pipeline.sql" -c 4 -j 2 -t 200

# Both tenants at once on the same two server connections (same server role, one pool), in all
# three modes: pgbench's prepared statements (P_0, P_1... on every client, for different scripts)
# meet both tenants' other transactions on the same server connections.
pids=()
names=()
run_pgbench_bg() { names+=("$1"); run_pgbench "$@" & pids+=($!); }
run_pgbench_bg tenant-DE-shared "$de" 1600 -n -f "$TEST_DIR/tenant-DE.sql" -c 8 -j 2 -t 200
run_pgbench_bg tenant-FR-shared "$fr" 1600 -n -M extended -f "$TEST_DIR/tenant-FR.sql" -c 8 -j 2 -t 200
run_pgbench_bg tenant-DE-pipeline-shared "$de" 800 -n -M extended -f "$TEST_DIR/tenant-DE-pipeline.sql" -c 4 -j 2 -t 200
run_pgbench_bg tenant-FR-prepared-shared "$fr" 1600 -n -M prepared -f "$TEST_DIR/tenant-FR.sql" -c 8 -j 8 -t 200
run_pgbench_bg tenant-DE-pipeline-prepared-shared "$de" 800 -n -M prepared -f "$TEST_DIR/tenant-DE-pipeline.sql" -c 4 -j 2 -t 200
for i in "${!pids[@]}"; do
    st=0
    wait "${pids[$i]}" || st=$?
    assert_eq 0 "$st" "concurrent pgbench ${names[$i]}"
done
mesh_stop

# Session pooling: prepared statements stay on the client's server connection.
ini_set pgmesh pool_mode session
ini_set pgmesh default_pool_size 8
mesh_start
run_pgbench select-prepared-session "$de" 1600 -n -S -M prepared -c 8 -j 2 -t 200
run_pgbench tenant-prepared-session "$fr" 800 -n -M prepared -f "$TEST_DIR/tenant-FR.sql" -c 4 -j 2 -t 200
mesh_stop
