#!/usr/bin/env bash
# Clients queued for a server are not stranded when the pool's servers die: with a pool of one
# held by a long transaction and three clients queued behind it, every pgmesh server backend is
# terminated (pg_terminate_backend); the holder loses its transaction (FATAL) and the queued
# clients are served at once on a new connection, long before query_wait_timeout (20 s here).
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set pgmesh default_pool_size 1
ini_set pgmesh query_wait_timeout 20s
ini_set pgmesh log_level debug # the queue is read from the client state changes
mesh_start
tok=$(mint acme regional_analyst)
assert_eq 1 "$(mesh_psql "$tok" -c 'SELECT 1')" "warm-up query"

now_ms() { date +%s%3N; }

echo "== a transaction holds the pool's one server"
mesh_psql "$tok" -c 'BEGIN' -c 'SELECT pg_sleep(40)' -c 'COMMIT' > "$TEST_DIR/holder.out" 2>&1 &
holder=$!
for _ in $(seq 1 100); do
    [ "$(pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(40)%' AND usename = 'marketing_domain_role'")" = 1 ] && break
    sleep 0.1
done

echo "== three clients queue behind it"
for i in 1 2 3; do
    (
        st=0
        mesh_psql "$tok" -c "SELECT 'served $i'" > "$TEST_DIR/q$i.out" 2>&1 || st=$?
        echo "$st $(now_ms)" > "$TEST_DIR/q$i.done"
    ) &
done
for _ in $(seq 1 100); do
    [ "$(grep -c -- '-> wait_server' "$MESH_LOG" || true)" -ge 3 ] && break
    sleep 0.1
done
[ "$(grep -c -- '-> wait_server' "$MESH_LOG" || true)" -ge 3 ] || fail "three clients did not queue"
sleep 0.3
for i in 1 2 3; do [ ! -f "$TEST_DIR/q$i.done" ] || fail "client $i was not queued: $(cat "$TEST_DIR/q$i.out")"; done

echo "== every pgmesh server backend is terminated"
t0=$(now_ms)
n=$(pg_psql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'marketing_domain_role' AND pid <> pg_backend_pid()")
echo "terminated $n backend(s)"
[ "$n" -ge 1 ] || fail "no pgmesh server backend to terminate"

worst=0
for i in 1 2 3; do
    for _ in $(seq 1 150); do [ -f "$TEST_DIR/q$i.done" ] && break; sleep 0.1; done
    [ -f "$TEST_DIR/q$i.done" ] || fail "queued client $i still waiting 15 s after its pool's servers died"
    read -r st t < "$TEST_DIR/q$i.done"
    assert_eq 0 "$st" "queued client $i's status ($(cat "$TEST_DIR/q$i.out"))"
    assert_eq "served $i" "$(cat "$TEST_DIR/q$i.out")" "queued client $i"
    [ $((t - t0)) -gt "$worst" ] && worst=$((t - t0))
done
echo "queued clients served within ${worst} ms of the termination (psql start-up included)"
# The figure asked for is 1 s; a loaded test machine gets some slack, query_wait_timeout is 20 s.
[ "$worst" -lt 3000 ] || fail "queued clients took ${worst} ms to be served"

st=0
wait "$holder" || st=$?
[ "$st" != 0 ] || fail "the holder's transaction survived its backend's termination"
assert_contains "$(cat "$TEST_DIR/holder.out")" "terminating connection due to administrator command" "holder"
assert_eq 1 "$(mesh_psql "$tok" -c 'SELECT 1')" "a query after the outage"
mesh_stop
echo ok
