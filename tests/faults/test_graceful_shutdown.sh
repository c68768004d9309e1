#!/usr/bin/env bash
# A deploy stops the pooler under load: six clients are inside transactions (BEGIN and a write to
# core.scratch) and the four tenants' load runs when pgmesh gets SIGTERM (PgBouncer beside it gets
# SIGINT, its own graceful shutdown). What a user checks: the six transactions run on after the
# signal (a pg_sleep(1) and COMMIT) and their rows are there, new connections are refused at once
# (so a load balancer moves on), clients between transactions are told why they are cut (FATAL
# 57P01), and the process exits once its last transaction is done. Targets for pgmesh: 6 of 6
# committed, refused, 57P01; figures for both.
. "$(dirname "$0")/lib.sh"

N=6
mesh_config
ini_set pgmesh default_pool_size 10
mesh_start
bouncer_start default_pool_size=10
tok=$(mint DE regional_analyst)
pg_psql -c "DELETE FROM core.scratch WHERE note LIKE 'graceful-%'"
lib_at_exit "pg_psql -c \"DELETE FROM core.scratch WHERE note LIKE 'graceful-%'\""

# phase NAME PID SIGNAL PORT USER PASSWORD PSQL [SQL to set the claim]: sets COMMITTED, NEW_CONN,
# IDLE_GOT and EXIT_MS (last COMMIT to the process gone).
phase() {
    local name=$1 pid=$2 sig=$3 port=$4 user=$5 password=$6 psqlf=$7 claim=${8:-} i n st out last
    local before=(--before BEGIN)
    [ -z "$claim" ] || before+=(--before "$claim")
    before+=(--before "INSERT INTO core.scratch (note) VALUES ('graceful-$name-{i}')")
    load_start "$name" "$name" --think-ms 5
    load_wait_ok "$name" 100 20

    echo "== $name: $N open transactions and one idle client"
    "$PYTHON" "$FAULTS_DIR/txclients.py" --port "$port" --user "$user" --password "$password" -n "$N" \
        "${before[@]}" --after 'SELECT pg_sleep(1)' --after COMMIT \
        --go-file "$TEST_DIR/$name.go" --out "$TEST_DIR/$name-tx.json" --max-seconds 30 > "$TEST_DIR/$name-tx.log" 2>&1 &
    _lib_pids+=("$!")
    (
        st=0
        {
            echo "SELECT 'idle';"
            while [ ! -f "$TEST_DIR/$name.go" ]; do sleep 0.05; done
            sleep 0.5
            echo "SELECT 'never';"
        } | $psqlf -v VERBOSITY=verbose -f - > "$TEST_DIR/$name-idle.out" 2>&1 || st=$?
        echo "$st" > "$TEST_DIR/$name-idle.st"
    ) &
    for i in $(seq 1 100); do
        n=$(stages "$name" ready)
        [ "$n" = "$N" ] && grep -q idle "$TEST_DIR/$name-idle.out" 2>/dev/null && break
        sleep 0.1
    done
    [ "$n" = "$N" ] || fail "$name: only $n transactions open: $(cat "$TEST_DIR/$name-tx.json")"

    echo "== $name: SIG$sig"
    kill -"$sig" "$pid"
    sleep 0.5
    kill -0 "$pid" 2>/dev/null || fail "$name exited with $N transactions open"
    st=0
    out=$(PGCONNECT_TIMEOUT=3 LIB_CMD_TIMEOUT_S=5 $psqlf -c "SELECT 'new'" 2>&1) || st=$?
    if [ "$st" = 0 ]; then NEW_CONN="served"
    elif [[ $out == *"Connection refused"* ]]; then NEW_CONN="refused"
    elif [ "$st" = 124 ]; then NEW_CONN="accepted, no answer in 5 s"
    else NEW_CONN=$(echo "$out" | grep -m1 -oE '(FATAL|ERROR|timeout).*' || echo "status $st")
    fi
    touch "$TEST_DIR/$name.go"
    gone=
    for i in $(seq 1 750); do
        kill -0 "$pid" 2>/dev/null || { gone=$(now_ms); break; }
        sleep 0.02
    done
    for i in $(seq 1 100); do
        [ $(($(stages "$name" "done") + $(stages "$name" error))) = "$N" ] && break
        sleep 0.1
    done
    last=$("$PYTHON" -c 'import json, sys; print(max([c.get("done_ms", 0) for c in json.load(open(sys.argv[1]))]))' "$TEST_DIR/$name-tx.json")
    if [ -z "$gone" ]; then EXIT_MS="still running"; else EXIT_MS=$((gone - last)); fi
    COMMITTED=$(pg_psql -c "SELECT count(*) FROM core.scratch WHERE note LIKE 'graceful-$name-%'")
    echo "$name: $(stages "$name" "done") of $N clients saw COMMIT, $COMMITTED rows; $(cat "$TEST_DIR/$name-tx.json")"
    for i in $(seq 1 50); do [ -f "$TEST_DIR/$name-idle.st" ] && break; sleep 0.1; done
    IDLE_GOT=$(grep -m1 -E 'FATAL|ERROR|closed|lost' "$TEST_DIR/$name-idle.out" | sed 's/^psql:[^ ]* //' || echo "nothing")
    echo "$name: idle client: $(cat "$TEST_DIR/$name-idle.out")"
    load_stop "$name"
}

stages() { # NAME STAGE: how many of the N clients are at STAGE
    "$PYTHON" -c 'import json, sys; print(sum(c["stage"] == sys.argv[2] for c in json.load(open(sys.argv[1]))))' \
        "$TEST_DIR/$1-tx.json" "$2" 2>/dev/null || echo 0
}
bouncer_psql_pw() { bouncer_psql "$@"; }

phase mesh "$MESH_PID" TERM "$MESH_PORT" analyst "$tok" "mesh_psql $tok"
mesh_committed=$COMMITTED mesh_new=$NEW_CONN mesh_idle=$IDLE_GOT mesh_exit=$EXIT_MS
kill -0 "$MESH_PID" 2>/dev/null || MESH_PID=
phase bouncer "$BOUNCER_PID" INT "$BOUNCER_PORT" marketing_domain_role "$BOUNCER_PASSWORD" bouncer_psql_pw \
    "SELECT set_config('request.jwt.claim.tenant', 'DE', true)"
kill -0 "$BOUNCER_PID" 2>/dev/null || BOUNCER_PID=

v() { if eval "$1"; then echo pass; else echo FAIL; fi; }
fig="graceful shutdown (pgmesh SIGTERM, PgBouncer SIGINT)"
figure "$fig" "open transactions committed" "$mesh_committed/$N" "$COMMITTED/$N" "$N/$N" "$(v '[ "$mesh_committed" = "$N" ]')"
figure "$fig" "new connection during the shutdown" "$mesh_new" "$NEW_CONN" "refused" "$(v '[ "$mesh_new" = refused ]')"
figure "$fig" "client between transactions got" "${mesh_idle//|/}" "${IDLE_GOT//|/}" "FATAL 57P01" \
    "$(v '[[ $mesh_idle == *57P01* ]]')"
# psycopg reports a FATAL that arrives between queries as a lost connection, without its SQLSTATE:
# pgmesh's log (each line written or counted in a "repeated N" line) says how many it told.
mesh_57p01=$(awk '/FATAL 57P01/ { if (match($0, /repeated [0-9]+ more time/)) { split(substr($0, RSTART), w, " "); n += w[2] } else n++ } END { print n + 0 }' "$MESH_LOG")
figure "$fig" "clients told 57P01 (load and idle)" "$mesh_57p01" "-" "-" "-"
figure "$fig" "exit after the last COMMIT (ms)" "$mesh_exit" "$EXIT_MS" "-" "-"
assert_eq "$N" "$mesh_committed" "pgmesh: rows committed by the open transactions"
assert_eq refused "$mesh_new" "pgmesh: a new connection during the shutdown"
assert_contains "$mesh_idle" "57P01" "pgmesh: the idle client"
[ -z "$MESH_PID" ] || fail "pgmesh still running after its last transaction ended"
echo ok
