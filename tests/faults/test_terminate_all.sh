#!/usr/bin/env bash
# Every server connection of the pooler is terminated (pg_terminate_backend, as an operator or a
# failover script does) while clients are queued for one: a pool of 2 is held by two pg_sleep
# transactions, eight clients (psycopg, each about to run a short transaction) and the tenants'
# background load queue behind them, then all of the pooler's backends are killed. The holders
# lose their transactions; the queued clients must not wait for query_wait_timeout (20 s here) but
# be served as soon as new servers are up. Figure: ms from the terminate to the last queued
# client's COMMIT, pgmesh beside PgBouncer; no client may see another tenant's rows meanwhile.
. "$(dirname "$0")/lib.sh"

QUEUED=8

# Backends whose client end is a socket of PID: the pooler's server connections, and only those,
# as pgmesh and PgBouncer log in as the same role.
pooler_backends() {
    local ports
    ports=$(ss -Htnp state established "( dport = :$PG_PORT )" | grep "pid=$1," | awk '{ n = split($3, a, ":"); print a[n] }' | paste -sd, -)
    [ -n "$ports" ] || { echo ""; return 0; }
    pg_psql -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE client_addr = '127.0.0.1' AND client_port IN ($ports)"
}

# phase NAME PID PASSWORD USER PSQL PORT: sets PHASE_MS to the ms from the terminate to the last queued COMMIT.
phase() {
    local name=$1 pid=$2 password=$3 user=$4 psqlf=$5 port=$6 i pids n t0
    echo "== $name: two transactions hold the pool of 2"
    for i in 1 2; do
        (
            st=0
            $psqlf "$password" -c 'BEGIN' -c 'SELECT pg_sleep(30)' -c 'COMMIT' > "$TEST_DIR/$name-holder$i.out" 2>&1 || st=$?
            echo "$st" > "$TEST_DIR/$name-holder$i.st"
        ) &
    done
    for i in $(seq 1 100); do
        pids=$(pooler_backends "$pid")
        [ -n "$pids" ] && n=$(pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE pid IN ($pids) AND query = 'SELECT pg_sleep(30)' AND state = 'active'") && [ "$n" = 2 ] && break
        sleep 0.1
    done
    [ "${n:-0}" = 2 ] || fail "$name: the two holders did not get the pool's servers"

    echo "== $name: $QUEUED clients queue behind them"
    touch "$TEST_DIR/$name.go"
    "$PYTHON" "$FAULTS_DIR/txclients.py" --port "$port" --user "$user" --password "$password" -n "$QUEUED" \
        --after BEGIN --after 'SELECT count(*) FROM core.fct_playback_sessions' --after COMMIT \
        --go-file "$TEST_DIR/$name.go" --out "$TEST_DIR/$name-q.json" --max-seconds 40 > "$TEST_DIR/$name-q.log" 2>&1 &
    _lib_pids+=("$!")
    for i in $(seq 1 100); do
        [ "$(stages "$name" sent)" = "$QUEUED" ] && break
        sleep 0.1
    done
    [ "$(stages "$name" sent)" = "$QUEUED" ] || fail "$name: the clients did not all connect: $(cat "$TEST_DIR/$name-q.json")"
    sleep 0.5 # time to reach the pooler's queue; none may be served while both holders sleep
    [ "$(stages "$name" sent)" = "$QUEUED" ] || fail "$name: clients were served with the pool held: $(cat "$TEST_DIR/$name-q.json")"

    echo "== $name: every server connection is terminated"
    pids=$(pooler_backends "$pid")
    t0=$(now_ms)
    n=$(pg_psql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid IN ($pids)")
    echo "$name: terminated $n backend(s)"
    for i in $(seq 1 250); do
        [ "$(stages "$name" "done")" = "$QUEUED" ] && break
        [ "$(stages "$name" error)" = 0 ] || break
        sleep 0.1
    done
    [ "$(stages "$name" "done")" = "$QUEUED" ] || {
        echo "$name: queued clients: $(cat "$TEST_DIR/$name-q.json")"
        PHASE_MS=never
        return 0
    }
    for i in 1 2; do
        for _ in $(seq 1 100); do [ -f "$TEST_DIR/$name-holder$i.st" ] && break; sleep 0.1; done
        [ "$(cat "$TEST_DIR/$name-holder$i.st" 2>/dev/null)" != 0 ] || fail "$name: holder $i's transaction survived its backend's termination"
        assert_contains "$(cat "$TEST_DIR/$name-holder$i.out")" "terminating connection due to administrator command" "$name holder $i"
    done
    PHASE_MS=$("$PYTHON" -c 'import json, sys; print(max(c["done_ms"] for c in json.load(open(sys.argv[1]))) - int(sys.argv[2]))' \
        "$TEST_DIR/$name-q.json" "$t0")
    echo "$name: the last queued client committed $PHASE_MS ms after the terminate"
}

bouncer_psql_pw() { shift; bouncer_psql "$@"; } # the password is BOUNCER_PASSWORD already

stages() { # NAME STAGE: how many queued clients are at STAGE
    "$PYTHON" -c 'import json, sys; print(sum(c["stage"] == sys.argv[2] for c in json.load(open(sys.argv[1]))))' \
        "$TEST_DIR/$1-q.json" "$2" 2>/dev/null || echo 0
}

mesh_config
ini_set pgmesh default_pool_size 2
ini_set pgmesh query_wait_timeout 20s
mesh_start
bouncer_start query_wait_timeout=20

tok=$(mint DE regional_analyst)
load_start mesh mesh --think-ms 5
load_wait_ok mesh 100 20
phase mesh "$MESH_PID" "$tok" analyst mesh_psql "$MESH_PORT"
mesh_ms=$PHASE_MS
load_wait_ok mesh 100 20
mesh_err=$(load_get mesh errors)
load_stop mesh
mesh_iso=$(load_get mesh isolation_failures)

load_start bouncer bouncer --think-ms 5
load_wait_ok bouncer 100 20
phase bouncer "$BOUNCER_PID" "$BOUNCER_PASSWORD" marketing_domain_role bouncer_psql_pw "$BOUNCER_PORT"
bouncer_ms=$PHASE_MS
load_wait_ok bouncer 100 20 || true
bouncer_err=$(load_get bouncer errors)
load_stop bouncer
bouncer_iso=$(load_get bouncer isolation_failures)

verdict=pass
[ "$mesh_ms" != never ] && [ "$mesh_ms" -le 1000 ] || verdict=FAIL
figure "terminate all server connections" "ms from terminate to the last of $QUEUED queued COMMITs" "$mesh_ms" "$bouncer_ms" "<= 1000" "$verdict"
figure "terminate all server connections" "background load: failed transactions" "$mesh_err" "$bouncer_err" "-" "-"
figure "terminate all server connections" "background load: isolation failures" "$mesh_iso" "$bouncer_iso" "0" "$([ "$mesh_iso" = 0 ] && echo pass || echo FAIL)"
[ "$verdict" = pass ] || fail "pgmesh served its queued clients $mesh_ms ms after their servers were terminated"
assert_eq 3 "$(mesh_psql "$tok" -c 'SELECT count(*) FROM core.fct_playback_sessions')" "a new client afterwards"
mesh_stop
echo ok
