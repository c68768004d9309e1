#!/usr/bin/env bash
# workers = 2: two processes behind one port (SO_REUSEPORT) and one Unix socket. Connections reach
# both (the worker is in the backend key's pid); a cancel request that lands on the other worker
# is passed over and still stops the query (57014); max_client_conn and max_client_conn_per_tenant
# hold across workers; SIGHUP reaches both; a worker killed outright is started again, its
# clients no longer count, and the rest go on; SIGTERM ends them all.
. "$(dirname "$0")/lib.sh"
PYTHON=/usr/bin/python3
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"
[ -z "${SERVER_KEY_FILE:-}" ] || { echo "runs once, in the suite without the extension"; exit 77; }

mesh_config
ini_set pgmesh workers 2
ini_set pgmesh default_pool_size 4
ini_set pgmesh max_client_conn 6
ini_set pgmesh max_client_conn_per_tenant 3
mesh_start
wait_log "worker 1 started"
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
export DE_DSN FR_DSN
DE_DSN=$(mesh_dsn "$de")
FR_DSN=$(mesh_dsn "$fr")

echo "== connections reach both workers, and each sees its own tenant's rows"
out=$("$PYTHON" - <<'PY'
import os, psycopg
seen = set()
for i in range(24):
    dsn = os.environ["DE_DSN" if i % 2 else "FR_DSN"]
    with psycopg.connect(dsn) as c:
        seen.add((c.info.backend_pid >> 20) & 0xF)
        tenant = c.execute("SELECT current_setting('request.jwt.claim.tenant')").fetchone()[0]
        assert tenant == ("DE" if i % 2 else "FR"), tenant
print(sorted(seen))
PY
)
assert_eq "[0, 1]" "$out" "workers that served 24 connections"

echo "== a cancel that lands on the other worker is passed on"
out=$("$PYTHON" - <<'PY'
import os, threading, time, psycopg
forwarded = 0
for attempt in range(20):
    with psycopg.connect(os.environ["DE_DSN"]) as c:
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
    log = open(os.environ["MESH_LOG"]).read()
    forwarded = log.count("cancel request passed to worker")
    if forwarded:
        break
print("forwarded" if forwarded else "never forwarded", attempt + 1)
PY
)
assert_contains "$out" "forwarded" "cancels across workers"
assert_not_contains "$out" "never" "cancels across workers"
echo "$out"

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
