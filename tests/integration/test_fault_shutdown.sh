#!/usr/bin/env bash
# Graceful shutdown, in both pool modes: on SIGTERM pgmesh stops accepting (a new connection is refused), six open
# transactions run on and commit, a client idle between transactions gets FATAL 57P01, and
# pgmesh exits once no client is left; a second SIGTERM stops it at once, open transaction or not.
. "$(dirname "$0")/lib.sh"
once_without_extension "shutdown is the same with or without it"

mesh_config
ini_set pgmesh default_pool_size 8
tok=$(mint acme regional_analyst)
pg_psql -c "DROP TABLE IF EXISTS fault_shutdown" \
    -c "CREATE TABLE fault_shutdown (tag text)" -c "GRANT INSERT, SELECT ON fault_shutdown TO marketing_domain_role"
lib_at_exit 'pg_psql -c "DROP TABLE IF EXISTS fault_shutdown"'

# client N: BEGIN and an INSERT, then waits for the file go before its last statement and COMMIT.
tx_client() {
    {
        echo "BEGIN;"
        echo "INSERT INTO fault_shutdown VALUES ('t$1');"
        echo "SELECT 'in $1';"
        while [ ! -f "$TEST_DIR/go" ]; do sleep 0.1; done
        echo "SELECT 'after $1';"
        echo "COMMIT;"
    } | mesh_psql "$tok" -v VERBOSITY=verbose -f - > "$TEST_DIR/tx$1.out" 2>&1
    echo $? > "$TEST_DIR/tx$1.st"
}

for mode in transaction session; do
    ini_set pgmesh pool_mode "$mode"
    rm -f "$TEST_DIR"/go "$TEST_DIR"/tx*.st "$TEST_DIR"/tx*.out "$TEST_DIR"/idle.out
    pg_psql -c "TRUNCATE fault_shutdown"
    mesh_start
    echo "== $mode pooling: six open transactions and one idle client"
    for i in 1 2 3 4 5 6; do tx_client "$i" & done
    {
        echo "SELECT 'idle';"
        while [ ! -f "$TEST_DIR/go" ]; do sleep 0.1; done
        echo "SELECT 'never';"
    } | mesh_psql "$tok" -v VERBOSITY=verbose -f - > "$TEST_DIR/idle.out" 2>&1 &
    for _ in $(seq 1 100); do
        n=0
        for i in 1 2 3 4 5 6; do grep -q "in $i" "$TEST_DIR/tx$i.out" 2>/dev/null && n=$((n + 1)); done
        [ "$n" = 6 ] && grep -q idle "$TEST_DIR/idle.out" 2>/dev/null && break
        sleep 0.1
    done
    [ "$n" = 6 ] || fail "only $n transactions open"

    echo "== SIGTERM"
    kill -TERM "$MESH_PID"
    wait_log "\[$MESH_PID\] INFO received signal 15: shutting down" 5
    sleep 0.5
    kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh exited with six transactions open"
    st=0
    out=$(mesh_psql "$tok" -c 'SELECT 1' 2>&1) || st=$?
    [ "$st" != 0 ] || fail "a new connection was accepted during the shutdown"
    assert_contains "$out" "Connection refused" "a new connection during the shutdown"
    touch "$TEST_DIR/go"
    for _ in $(seq 1 100); do kill -0 "$MESH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$MESH_PID" 2>/dev/null && fail "pgmesh still running 10 s after its last transaction could end"
    done_ok=0
    for i in 1 2 3 4 5 6; do
        for _ in $(seq 1 50); do [ -f "$TEST_DIR/tx$i.st" ] && break; sleep 0.1; done
        if [ "$(cat "$TEST_DIR/tx$i.st" 2>/dev/null)" = 0 ] && grep -q "after $i" "$TEST_DIR/tx$i.out"; then
            done_ok=$((done_ok + 1))
        else
            echo "transaction $i: $(cat "$TEST_DIR/tx$i.out")"
        fi
    done
    committed=$(pg_psql -c "SELECT count(*) FROM fault_shutdown")
    echo "$mode pooling: $done_ok of 6 open transactions finished on SIGTERM, $committed rows committed"
    assert_eq 6 "$done_ok" "transactions finished"
    assert_eq 6 "$committed" "rows committed"
    wait
    assert_contains "$(cat "$TEST_DIR/idle.out")" "57P01" "the idle client"
    assert_contains "$(cat "$TEST_DIR/idle.out")" "terminating connection due to administrator command" "the idle client"
    assert_not_contains "$(cat "$TEST_DIR/idle.out")" "never" "the idle client"
    MESH_PID=
done

echo "== a second SIGTERM stops at once"
ini_set pgmesh pool_mode transaction
mesh_start
{
    echo "BEGIN;"
    echo "SELECT 'open';"
    sleep 10
} | mesh_psql "$tok" -f - > "$TEST_DIR/open.out" 2>&1 &
for _ in $(seq 1 100); do grep -q open "$TEST_DIR/open.out" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$MESH_PID"
sleep 1
kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh exited with a transaction open after one SIGTERM"
kill -TERM "$MESH_PID"
for _ in $(seq 1 20); do kill -0 "$MESH_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$MESH_PID" 2>/dev/null && fail "pgmesh still running 2 s after a second SIGTERM"
wait_log 'again: stopping now' 1
MESH_PID=
echo ok
