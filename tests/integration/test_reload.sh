#!/usr/bin/env bash
# SIGHUP reloads the config under load (pgbench through pgmesh, plus a psql session held open across
# every reload): default_pool_size grows and shrinks the pool (server connections counted in
# pg_stat_activity), a role's new statement_timeout reaches an existing session and new ones, and a
# database moved to a second cluster (started here) takes new transactions there while the old
# server connections close as they come back; no client is disconnected. Then a restart-only change
# is named in the log and keeps its old value, and a file with a syntax error changes nothing and
# the log names file:line.
. "$(dirname "$0")/lib.sh"
# shellcheck source=../../scripts/pgcluster.sh
. "$(dirname "$0")/../../scripts/pgcluster.sh"

PG2_DIR=$TEST_DIR/pg2
lib_at_exit 'pgcluster_stop "$PG2_DIR"'

# --- a second cluster with the server role the pool logs in as, reachable by its own passfile
mkdir -p "$PG2_DIR"
pgcluster_start_free "$PG2_DIR" "" max_connections=40 || fail "could not start the second cluster"
PG2_PORT=$PGCLUSTER_PORT
pw2=$(openssl rand -hex 16)
pgcluster_psql "$PG2_DIR" "$PG2_PORT" -d postgres \
    -c "CREATE ROLE marketing_domain_role LOGIN PASSWORD '$pw2'" -c "CREATE DATABASE media_analytics" > /dev/null
(umask 077 && echo "127.0.0.1:$PG2_PORT:*:marketing_domain_role:$pw2" > "$TEST_DIR/pgpass2")

# server_count CLUSTER: server connections of the pool (marketing_domain_role) on the suite's
# cluster (1) or the second one (2).
server_count() {
    local q="SELECT count(*) FROM pg_stat_activity WHERE usename = 'marketing_domain_role'"
    if [ "$1" = 1 ]; then
        pg_psql -c "$q"
    else
        pgcluster_psql "$PG2_DIR" "$PG2_PORT" -d postgres -A -t -c "$q"
    fi
}

# wait_servers CLUSTER N: until the pool has N server connections there (20 s at most).
wait_servers() {
    local i n=
    for i in $(seq 1 100); do
        n=$(server_count "$1")
        [ "$n" = "$2" ] && return 0
        sleep 0.2
    done
    fail "expected $2 server connections on cluster $1, found $n after 20 s"
}


mesh_config   # default_pool_size = 2, regional_analyst has statement_timeout=30s
# Its own cluster has no pgmesh extension: where the suite's has it, prefer uses it there only.
if [ -n "${SERVER_KEY_FILE:-}" ]; then ini_set pgmesh server_enforcement prefer; fi
mesh_start
tok=$(mint DE regional_analyst)

# --- a psql session held open across every reload; session EXPR sets REPLY to EXPR's value
mkfifo "$TEST_DIR/session.in"
PGPASSWORD=$tok timeout -k 5 100 psql -X -A -t -q -w -v ON_ERROR_STOP=1 "$(mesh_dsn "$tok" | sed 's/ password=[^ ]*//')" \
    < "$TEST_DIR/session.in" > "$TEST_DIR/session.out" 2>&1 &
session_pid=$!
_lib_pids+=("$session_pid")
exec 7> "$TEST_DIR/session.in"
nq=0
session() {
    nq=$((nq + 1))
    echo "SELECT 'q$nq:' || ($1);" >&7
    local i line
    for i in $(seq 1 100); do
        line=$(grep "^q$nq:" "$TEST_DIR/session.out" || true)
        if [ -n "$line" ]; then
            REPLY=${line#q"$nq":}
            return 0
        fi
        sleep 0.1
    done
    cat "$TEST_DIR/session.out" >&2
    fail "the long-lived session did not answer query $nq ($1)"
}
session "current_setting('statement_timeout')"
assert_eq "30s" "$REPLY" "statement_timeout in the open session before the reload"
session "inet_server_port()::text"
assert_eq "$PG_PORT" "$REPLY" "server port before the move"

# --- load: more clients than server connections, each transaction holding one for 5 ms
echo "SELECT inet_server_port(), pg_sleep(0.005);" > "$TEST_DIR/bench.sql"
PGPASSWORD=$tok PGSSLMODE=disable timeout -k 5 100 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" -U analyst \
    -n -f "$TEST_DIR/bench.sql" -c 6 -j 2 -T 6 media_analytics > "$TEST_DIR/pgbench.txt" 2>&1 &
bench_pid=$!
_lib_pids+=("$bench_pid")
wait_servers 1 2

# --- the pool grows: 2 -> 5
ini_set pgmesh default_pool_size 5
mesh_reload
wait_servers 1 5

# --- a role's statement_timeout: the open session from its next transaction, and new sessions
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=7s work_mem=128MB"
mesh_reload
wait_log "config reload: role regional_analyst changed"
session "current_setting('statement_timeout')"
assert_eq "7s" "$REPLY" "statement_timeout in the open session after the reload"
assert_eq "7s" "$(mesh_psql "$tok" -c "SHOW statement_timeout")" "statement_timeout in a new session"

# --- the pool shrinks: 5 -> 3, surplus servers close as they come back
ini_set pgmesh default_pool_size 3
mesh_reload
wait_servers 1 3
wait_log "closing (idle )?server connection: the pool is over default_pool_size"

# --- the database moves to the second cluster
ini_set databases media_analytics "host=127.0.0.1 port=$PG2_PORT dbname=media_analytics passfile=$TEST_DIR/pgpass2"
mesh_reload
wait_log "config reload: database media_analytics has a new conninfo"
session "inet_server_port()::text"
assert_eq "$PG2_PORT" "$REPLY" "the open session's next transaction runs on the new cluster"
assert_eq "$PG2_PORT" "$(mesh_psql "$tok" -c "SELECT inet_server_port()")" "a new session runs on the new cluster"
wait_servers 1 0
wait_servers 2 3
wait_log "the database's conninfo changed \(config reload\)"
kill -0 "$bench_pid" 2>/dev/null || fail "pgbench ended before the reloads were done: raise its -T"

# --- pgbench ran through all of it without an error or a lost client
st=0
wait "$bench_pid" || st=$?
report=$(cat "$TEST_DIR/pgbench.txt")
[ "$st" = 0 ] || { echo "$report" | tail -n 20; fail "pgbench exited with status $st"; }
assert_contains "$report" "number of failed transactions: 0 " "pgbench under reloads"
assert_not_contains "$report" "aborted" "pgbench under reloads"
echo "pgbench: $(grep -E '^number of transactions actually processed' "$TEST_DIR/pgbench.txt")"
session "'alive'"
assert_eq "alive" "$REPLY" "the open session after the reloads"
assert_not_contains "$(cat "$MESH_LOG")" "server connection lost" "pgmesh log"

# --- restart-only keys: named in the log, running values kept
new_port=$(pgcluster_free_port)
ini_set pgmesh listen_port "$new_port"
ini_set pgmesh pool_mode session
mesh_reload
wait_log "config reload: listen_port, pool_mode changed but only a restart applies them; keeping the running values"
ss -Htln "sport = :$new_port" | grep -q . && fail "pgmesh listens on the new listen_port $new_port"
assert_eq "DE" "$(mesh_psql "$tok" -c "SELECT current_setting('request.jwt.claim.tenant')")" "the old listen_port"

# --- a file with a syntax error (and a new statement_timeout) changes nothing; file:line logged
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=9s work_mem=128MB"
echo "this line is not ini" >> "$MESH_INI"
bad_line=$(wc -l < "$MESH_INI")
mesh_reload
wait_log "SIGHUP: configuration not reloaded, nothing changed: $MESH_INI:$bad_line: syntax error"
session "current_setting('statement_timeout')"
assert_eq "7s" "$REPLY" "statement_timeout in the open session after a bad file"
assert_eq "7s" "$(mesh_psql "$tok" -c "SHOW statement_timeout")" "statement_timeout in a new session after a bad file"
assert_eq "3" "$(server_count 2)" "server connections after a bad file"

exec 7>&-
st=0
wait "$session_pid" || st=$?
[ "$st" = 0 ] || { cat "$TEST_DIR/session.out"; fail "the open session ended with status $st"; }
mesh_stop
echo "ok"
