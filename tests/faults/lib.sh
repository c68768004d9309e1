# Helpers for the fault suite (tests/faults/test_*.sh, run by tests/faults/run.sh, which runs them
# through tests/integration/run.sh on one PostgreSQL with the sample mesh). Sources the integration
# lib.sh, so everything there (mesh_config, mesh_start, mint, mesh_psql, pg_psql, assert_*) is here.
# Cases run one after another, so a case may stop and restart the suite's cluster (pg_restart,
# pg_down/pg_up) as long as it leaves it running.
#
#   figure CASE METRIC PGMESH PGBOUNCER TARGET VERDICT
#                               records one row of the suite's table (FAULT_FIGURES, a TSV) and
#                               prints it; "-" where a column does not apply
#   load_start NAME mesh|bouncer [load.py args]
#                               background load (tests/faults/load.py): 2 threads each of DE, FR,
#                               ES, IT through pgmesh ($MESH_PORT, tokens minted here) or PgBouncer
#                               ($BOUNCER_PORT); its summary is $TEST_DIR/load-NAME.json
#   load_get NAME KEY           a number from the latest summary (ok, errors, isolation_failures)
#   load_stop NAME              stops it, waits for its last summary, fails on isolation failures
#   load_wait_ok NAME N [SECS]  waits until the load has done N more transactions (default 10 s)
#   load_back_ms NAME SINCE_MS SECS
#                               prints the ms from SINCE_MS to the load's first commit after it,
#                               waiting up to SECS for one; "never" when none came
#   bouncer_start [KEY=VALUE ...]
#                               PgBouncer 1.18 beside pgmesh: transaction pooling, pool 2, database
#                               media_analytics as marketing_domain_role; exports BOUNCER_PORT,
#                               BOUNCER_PID, BOUNCER_LOG, BOUNCER_PASSWORD (clients log in as
#                               marketing_domain_role with it); KEY=VALUE lines go to [pgbouncer]
#   bouncer_stop
#   bouncer_psql [psql args]    psql through PgBouncer, like mesh_psql
#   pg_down / pg_up / pg_restart
#                               stop (fast), start, or restart the suite's PostgreSQL on its port
#   proc_rss_kb PID  proc_fds PID  proc_cpu_ticks PID  (utime + stime, in clock ticks)
#   now_ms                      milliseconds since the epoch

# shellcheck source=../integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$FAULTS_DIR/../.." && pwd)
# shellcheck source=../../scripts/pgcluster.sh
. "$ROOT/scripts/pgcluster.sh"
FAULT_FIGURES=${FAULT_FIGURES:-$TEST_DIR/figures.tsv}
PYTHON=${PYTHON:-/usr/bin/python3}
chmod 755 "$TEST_DIR" # PgBouncer runs as the postgres OS user when we are root

now_ms() { date +%s%3N; }
proc_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
proc_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
proc_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

figure() {
    [ $# -eq 6 ] || fail "usage: figure CASE METRIC PGMESH PGBOUNCER TARGET VERDICT"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$FAULT_FIGURES"
    printf 'figure: %s | %s | pgmesh %s | PgBouncer %s | target %s | %s\n' "$@"
}

pg_down() { pgcluster_stop "$PG_DIR"; }
pg_up() {
    pgcluster_start "$PG_DIR" "$PG_PORT" > /dev/null || fail "could not start PostgreSQL again on port $PG_PORT"
}
pg_restart() { pg_down; pg_up; }

_fault_server_password() { # ROLE: from the suite's passfile
    awk -F: -v r="$1" '$4 == r { print $5; exit }' "$PG_PASSFILE"
}

bouncer_start() {
    command -v pgbouncer > /dev/null || fail "bouncer_start: pgbouncer is not installed"
    local dir=$TEST_DIR/pgbouncer kv
    mkdir -p "$dir"
    BOUNCER_PORT=$(_lib_free_port)
    BOUNCER_LOG=$dir/pgbouncer.log
    BOUNCER_PASSWORD=$(_fault_server_password marketing_domain_role)
    cat > "$dir/pgbouncer.ini" <<INI
[databases]
media_analytics = host=127.0.0.1 port=$PG_PORT dbname=media_analytics

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 10000
query_wait_timeout = 30
logfile = $BOUNCER_LOG
pidfile = $dir/pgbouncer.pid
INI
    for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}" >> "$dir/pgbouncer.ini"; done
    echo "\"marketing_domain_role\" \"$BOUNCER_PASSWORD\"" > "$dir/userlist.txt"
    chmod 600 "$dir/userlist.txt"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- pgbouncer -d -q "$dir/pgbouncer.ini") || fail "PgBouncer did not start"
    else
        pgbouncer -d -q "$dir/pgbouncer.ini" || fail "PgBouncer did not start"
    fi
    local i
    for i in $(seq 1 100); do
        [ -s "$dir/pgbouncer.pid" ] && ss -Htln "sport = :$BOUNCER_PORT" | grep -q . && break
        sleep 0.1
    done
    BOUNCER_PID=$(cat "$dir/pgbouncer.pid" 2>/dev/null) || fail "PgBouncer wrote no pid file"
    export BOUNCER_PORT BOUNCER_PID BOUNCER_LOG BOUNCER_PASSWORD
    lib_at_exit bouncer_stop
}

bouncer_stop() {
    [ -n "${BOUNCER_PID:-}" ] || return 0
    kill -TERM "$BOUNCER_PID" 2>/dev/null || true
    _lib_wait_exit "$BOUNCER_PID" 10 || kill -KILL "$BOUNCER_PID" 2>/dev/null || true
    BOUNCER_PID=
}

bouncer_psql() {
    PGHOST=127.0.0.1 PGPORT=$BOUNCER_PORT PGDATABASE=media_analytics PGUSER=marketing_domain_role \
    PGSSLMODE=disable PGPASSWORD=$BOUNCER_PASSWORD PGAPPNAME=bouncer_psql \
        timeout -k 5 "$LIB_CMD_TIMEOUT_S" psql -X -A -t -q -w -v ON_ERROR_STOP=1 "$@"
}

declare -A _load_pids=()
load_start() {
    [ $# -ge 2 ] || fail "usage: load_start NAME mesh|bouncer [load.py args]"
    local name=$1 mode=$2 t
    shift 2
    local args=(--mode "$mode" --out "$TEST_DIR/load-$name.json" --stop-file "$TEST_DIR/load-$name.stop")
    rm -f "$TEST_DIR/load-$name.stop" "$TEST_DIR/load-$name.json"
    if [ "$mode" = mesh ]; then
        : > "$TEST_DIR/load-$name.tokens"
        for t in DE FR ES IT; do echo "$t $(mint "$t" regional_analyst)" >> "$TEST_DIR/load-$name.tokens"; done
        args+=(--port "$MESH_PORT" --tokens "$TEST_DIR/load-$name.tokens")
    else
        args+=(--port "$BOUNCER_PORT" --user marketing_domain_role --password "$BOUNCER_PASSWORD")
    fi
    "$PYTHON" "$FAULTS_DIR/load.py" "${args[@]}" "$@" > "$TEST_DIR/load-$name.log" 2>&1 &
    _load_pids[$name]=$!
    _lib_pids+=("$!")
    local i
    for i in $(seq 1 50); do [ -s "$TEST_DIR/load-$name.json" ] && return 0; sleep 0.1; done
    fail "load_start: no summary from the $name load after 5 s: $(tail -n 5 "$TEST_DIR/load-$name.log")"
}

load_get() {
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TEST_DIR/load-$1.json" "$2"
}

load_wait_ok() {
    local name=$1 more=$2 secs=${3:-10} base i
    base=$(load_get "$name" ok)
    for i in $(seq 1 $((secs * 10))); do
        [ "$(load_get "$name" ok)" -ge $((base + more)) ] && return 0
        sleep 0.1
    done
    fail "load_wait_ok: the $name load did not do $more transactions in $secs s (last error: $(load_get "$name" last_error))"
}

load_back_ms() {
    local name=$1 since=$2 secs=$3 i
    for i in $(seq 1 $((secs * 10))); do
        if "$PYTHON" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["last_ok_at"] * 1000 > int(sys.argv[2]) else 1)' \
            "$TEST_DIR/load-$name.json" "$since"; then
            "$PYTHON" -c 'import json, sys; print(max(0, int(json.load(open(sys.argv[1]))["last_ok_at"] * 1000) - int(sys.argv[2])))' \
                "$TEST_DIR/load-$name.json" "$since"
            return 0
        fi
        sleep 0.1
    done
    echo "never"
}

load_stop() {
    local name=$1 pid=${_load_pids[$1]:-}
    [ -n "$pid" ] || fail "load_stop: no load named $name"
    touch "$TEST_DIR/load-$name.stop"
    _lib_wait_exit "$pid" 20 || fail "load_stop: the $name load did not stop"
    wait "$pid" 2>/dev/null || true
    unset "_load_pids[$name]"
    local iso
    iso=$(load_get "$name" isolation_failures)
    echo "load $name: $(load_get "$name" ok) transactions, $(load_get "$name" errors) errors, $iso isolation failures"
    [ "$iso" = 0 ] || fail "the $name load saw $iso isolation failures: $(load_get "$name" last_error)"
}

# A case that fails half-way must not leave the next one without a database.
_fault_ensure_pg() {
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 || pg_up
}
lib_at_exit _fault_ensure_pg
