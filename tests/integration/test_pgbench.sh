#!/usr/bin/env bash
# pgbench through pgmesh: -S in transaction pooling with the simple and extended protocols, -S with
# prepared statements in session pooling, a read-write TPC-B-like run, and a custom script whose
# every transaction fails unless it sees its own token's tenant (also pipelined, and reconnecting
# per transaction), run for two tenants at once on a pool of two shared server connections.
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
run_pgbench tpcb-simple "$de" 400 -n -c 4 -j 2 -t 100

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

# Both tenants at once on the same two server connections (same server role, one pool).
run_pgbench tenant-DE-shared "$de" 1600 -n -f "$TEST_DIR/tenant-DE.sql" -c 8 -j 2 -t 200 &
pid_de=$!
run_pgbench tenant-FR-shared "$fr" 1600 -n -M extended -f "$TEST_DIR/tenant-FR.sql" -c 8 -j 2 -t 200 &
pid_fr=$!
run_pgbench tenant-DE-pipeline-shared "$de" 800 -n -M extended -f "$TEST_DIR/tenant-DE-pipeline.sql" -c 4 -j 2 -t 200 &
pid_pipe=$!
st_de=0 st_fr=0 st_pipe=0
wait "$pid_de" || st_de=$?
wait "$pid_fr" || st_fr=$?
wait "$pid_pipe" || st_pipe=$?
assert_eq 0 "$st_de" "concurrent DE pgbench"
assert_eq 0 "$st_fr" "concurrent FR pgbench"
assert_eq 0 "$st_pipe" "concurrent DE pipelined pgbench"
mesh_stop

# Session pooling: prepared statements stay on the client's server connection.
ini_set pgmesh pool_mode session
ini_set pgmesh default_pool_size 8
mesh_start
run_pgbench select-prepared-session "$de" 1600 -n -S -M prepared -c 8 -j 2 -t 200
run_pgbench tenant-prepared-session "$fr" 800 -n -M prepared -f "$TEST_DIR/tenant-FR.sql" -c 4 -j 2 -t 200
mesh_stop

# Prepared statements in transaction pooling (what JDBC and others do after a few executions):
# pgmesh must either run them correctly for every client, or refuse them with a clear error;
# neither a hang nor one client's statement running under another's name.
ini_set pgmesh pool_mode transaction
ini_set pgmesh default_pool_size 2
mesh_start
out=$TEST_DIR/pgbench-prepared-transaction.txt
st=0
PGPASSWORD=$de PGSSLMODE=disable timeout -k 5 60 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" -U analyst \
    -n -M prepared -f "$TEST_DIR/tenant-DE.sql" -c 4 -j 2 -t 100 media_analytics > "$out" 2>&1 || st=$?
[ "$st" != 124 ] || fail "pgbench -M prepared in transaction pooling hung (killed after 60 s): $(tail -n 5 "$out")"
if [ "$st" = 0 ]; then
    report=$(cat "$out")
    assert_contains "$report" "number of transactions actually processed: 400/400" "pgbench -M prepared, transaction pooling"
    assert_not_contains "$report" "already exists" "pgbench -M prepared, transaction pooling"
    assert_not_contains "$report" "ERROR" "pgbench -M prepared, transaction pooling"
else
    assert_contains "$(cat "$out")" "not supported" "pgbench -M prepared refused in transaction pooling"
fi
mesh_stop
