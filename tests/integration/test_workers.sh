#!/usr/bin/env bash
# workers = 2: two processes behind one port (SO_REUSEPORT) and one Unix socket. Connections fill
# the first worker up to its share of the pool before the second gets any, whichever worker the
# kernel gave them to (the worker is in the backend key's pid); a cancel request that lands on the
# other worker is passed over and still stops the query (57014); max_client_conn and
# max_client_conn_per_tenant hold across workers; SIGHUP reaches both; a worker killed outright is
# started again, its clients no longer count, and the rest go on; SIGTERM ends them all.
. "$(dirname "$0")/lib.sh"
PYTHON=/usr/bin/python3
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"
once_without_extension "nothing it checks depends on it"

mesh_config
ini_set pgmesh workers 2
ini_set pgmesh default_pool_size 4
ini_set pgmesh max_client_conn 6
ini_set pgmesh max_client_conn_per_tenant 3
ini_set pgmesh admin_roles mesh_admin
METRICS_PORT=$(_lib_free_port)
ini_set pgmesh metrics_listen "127.0.0.1:$METRICS_PORT"
mesh_start
wait_log "worker 1 started"
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
export DE_DSN FR_DSN
DE_DSN=$(mesh_dsn "$de")
FR_DSN=$(mesh_dsn "$fr")

echo "== connections fill worker 0 to its share of default_pool_size (4: 2 each), then worker 1"
out=$("$PYTHON" - <<'PY'
import os, psycopg
held, where = [], []
for i in range(6):
    tenant = "DE" if i % 2 else "FR"
    c = psycopg.connect(os.environ[tenant + "_DSN"], autocommit=True)
    assert c.execute("SELECT current_setting('request.jwt.claim.tenant')").fetchone()[0] == tenant
    held.append(c)
    where.append((c.info.backend_pid >> 20) & 0xF)
# Past the shares the least loaded takes the next, the accepting one on a tie: one each.
print(where[:4], sorted(where[4:]))
for c in held:
    c.close()
PY
)
assert_eq "[0, 0, 1, 1] [0, 1]" "$out" "workers of six clients held at once"
sleep 0.5 # for both workers to count the six out

echo "== a cancel that lands on the other worker is passed on"
out=$("$PYTHON" - <<'PY'
import os, threading, time, psycopg
a, b = (psycopg.connect(os.environ["DE_DSN"]) for _ in range(2))
c = psycopg.connect(os.environ["FR_DSN"])
where = [(x.info.backend_pid >> 20) & 0xF for x in (a, b, c)]
assert where == [0, 0, 1], where
# With worker 0 empty again the cancel request's connection goes there, and on to worker 1.
a.close(), b.close()
time.sleep(0.5)
t = threading.Timer(0.5, c.cancel)
t.start()
t0 = time.monotonic()
try:
    c.execute("SELECT pg_sleep(20)")
    raise SystemExit("pg_sleep(20) was not cancelled")
except psycopg.errors.QueryCanceled:
    pass
assert time.monotonic() - t0 < 10, "cancel took %.1f s" % (time.monotonic() - t0)
t.join()
c.close()
print("cancelled")
PY
)
assert_eq "cancelled" "$out" "the query of worker 1's client"
grep -q "cancel request passed to worker 1" "$MESH_LOG" || fail "the cancel request was not passed to worker 1"

echo "== max_client_conn (6) and max_client_conn_per_tenant (3) across workers"
out=$("$PYTHON" - <<'PY'
import os, psycopg
held, errors = [], []
def connect(dsn):
    try:
        c = psycopg.connect(dsn, autocommit=True)
        c.execute("SELECT 1")
        held.append(c)
        return "ok"
    except psycopg.OperationalError as e:
        return "refused: " + " ".join(str(e).split())
res = [connect(os.environ["DE_DSN"]) for _ in range(4)]
workers = sorted({(c.info.backend_pid >> 20) & 0xF for c in held})
res += [connect(os.environ["FR_DSN"]) for _ in range(3)]
res.append(connect(os.environ["FR_DSN"]))
print(res[3])
print(res[4:7])
print(res[7])
for c in held:
    c.close()
PY
)
echo "$out"
assert_contains "$(sed -n 1p <<< "$out")" "too many connections for this tenant" "the 4th DE client"
assert_eq "['ok', 'ok', 'ok']" "$(sed -n 2p <<< "$out")" "3 FR clients next to 3 DE ones"
assert_contains "$(sed -n 3p <<< "$out")" "too many client connections" "the 7th client (max_client_conn 6)"

echo "== the admin console and /metrics add up both workers"
admin=$(mint ops mesh_admin)
admin_sql() { mesh_psql "$admin" -d pgmesh -F '|' "$@"; }
"$PYTHON" - > "$TEST_DIR/held.txt" <<'PY' &
import os, sys, time, psycopg
held = [psycopg.connect(os.environ[t + "_DSN"], autocommit=True) for t in ("DE", "DE", "FR", "FR")]
workers = {(c.info.backend_pid >> 20) & 0xF for c in held}
print(len(held), sorted(workers), flush=True)
time.sleep(15)
PY
holder=$!
for i in $(seq 1 100); do [ -s "$TEST_DIR/held.txt" ] && break; sleep 0.1; done
assert_eq "4 [0, 1]" "$(cat "$TEST_DIR/held.txt")" "held clients and their workers"
for i in 1 2 3 4; do
    # Each console connection lands on either worker; every answer is the whole instance's.
    assert_eq "DE|2
FR|2" "$(admin_sql -c 'SHOW TENANTS' | cut -d'|' -f1,2 | grep -E '^(DE|FR)\|' | sort)" "SHOW TENANTS clients, console connection $i"
    assert_eq 4 "$(admin_sql -c 'SHOW CLIENTS' | awk -F'|' '$17 == "DE" || $17 == "FR"' | wc -l)" "SHOW CLIENTS rows, console connection $i"
    assert_eq 4 "$(admin_sql -c 'SHOW POOLS' | grep '^media_analytics|marketing_domain_role|' | cut -d'|' -f13)" "SHOW POOLS pool_size (2 + 2), console connection $i"
done
http_get "http://127.0.0.1:$METRICS_PORT/metrics" > "$TEST_DIR/metrics.txt"
assert_eq 200 "$(head -n 1 "$TEST_DIR/metrics.txt")" "/metrics status"
assert_eq 2 "$(metric_value "$TEST_DIR/metrics.txt" 'pgmesh_tenant_clients{tenant="DE"}')" "DE clients in /metrics"
assert_eq 2 "$(metric_value "$TEST_DIR/metrics.txt" 'pgmesh_tenant_clients{tenant="FR"}')" "FR clients in /metrics"
if command -v promtool > /dev/null; then
    tail -n +2 "$TEST_DIR/metrics.txt" | promtool check metrics > "$TEST_DIR/promtool.txt" 2>&1 || { cat "$TEST_DIR/promtool.txt"; fail "promtool check metrics on the merged exposition"; }
fi
# KILL_CLIENT of each held client, from whichever worker the console reached.
for id in $(admin_sql -c 'SHOW CLIENTS' | awk -F'|' '$17 == "DE" || $17 == "FR" { print $13 }'); do
    assert_eq "" "$(admin_sql -c "KILL_CLIENT $id")" "KILL_CLIENT $id"
done
for i in $(seq 1 50); do
    [ "$(admin_sql -c 'SHOW CLIENTS' | awk -F'|' '$17 == "DE" || $17 == "FR"' | wc -l)" = 0 ] && break
    sleep 0.1
done
assert_eq 0 "$(admin_sql -c 'SHOW CLIENTS' | awk -F'|' '$17 == "DE" || $17 == "FR"' | wc -l)" "clients left after KILL_CLIENT"
grep -q "KILL_CLIENT .* (in worker" "$MESH_LOG" || fail "no KILL_CLIENT was passed to the other worker"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
# PAUSE holds both workers' clients until RESUME.
assert_eq "" "$(admin_sql -c 'PAUSE media_analytics')" "PAUSE"
paused=()
for i in 1 2 3 4; do
    tok=$de; [ "$i" -gt 2 ] && tok=$fr  # two of each: max_client_conn_per_tenant is 3
    ( mesh_psql "$tok" -c "SELECT 'ran'" > "$TEST_DIR/paused-$i.txt" 2>&1 ) &
    paused+=($!)
done
sleep 1.5
for i in 1 2 3 4; do assert_eq "" "$(cat "$TEST_DIR/paused-$i.txt")" "client $i while paused"; done
assert_eq "" "$(admin_sql -c 'RESUME media_analytics')" "RESUME"
for p in "${paused[@]}"; do wait "$p" || true; done
for i in 1 2 3 4; do assert_eq "ran" "$(cat "$TEST_DIR/paused-$i.txt")" "client $i after RESUME"; done

echo "== SIGHUP reaches both workers"
n0=$(grep -c "config reload: " "$MESH_LOG" || true)
kill -HUP "$MESH_PID"
for i in $(seq 1 50); do
    [ "$(grep -c "config reload: " "$MESH_LOG")" -ge $((n0 + 2)) ] && break
    sleep 0.1
done
assert_eq $((n0 + 2)) "$(grep -c "config reload: " "$MESH_LOG")" "reload lines after one SIGHUP"

echo "== a worker killed outright is started again; its clients stop counting"
victim=$(pgrep -P "$MESH_PID" | head -n 1)
[ -n "$victim" ] || fail "no worker process under $MESH_PID"
"$PYTHON" - "$victim" <<'PY' &
import os, sys, time, psycopg
# Hold three DE clients (the tenant's limit) while the worker dies, on whichever workers they land.
held = [psycopg.connect(os.environ["DE_DSN"], autocommit=True) for _ in range(3)]
time.sleep(3)
PY
holder=$!
sleep 1
kill -KILL "$victim"
wait_log "ended \(signal 9\): starting it again"
wait "$holder" || true
sleep 0.5
for i in 1 2 3 4 5 6; do
    assert_eq "DE" "$(mesh_psql "$de" -c "SELECT current_setting('request.jwt.claim.tenant')")" "DE client $i after the restart"
done
out=$("$PYTHON" - <<'PY'
import os, psycopg
held = [psycopg.connect(os.environ["DE_DSN"], autocommit=True) for _ in range(3)]
print(len(held))
PY
)
assert_eq 3 "$out" "three DE clients at once after the restart (the dead worker's are not counted)"

mesh_stop
assert_eq 0 "$(pgrep -fc -- "-c $MESH_INI" || true)" "pgmesh processes left after SIGTERM"
echo "ok"
