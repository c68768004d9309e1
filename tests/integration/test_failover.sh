#!/usr/bin/env bash
# Failover with a multi-host conninfo: a primary and its streaming standby (pg_basebackup -R) of
# their own, and a [databases] entry naming both with target_session_attrs=read-write. Under load
# (failover_load.py: clients committing numbered rows), the primary is stopped (immediate) and the
# standby promoted. Every error a client sees is a PostgreSQL error (class 08 or 57; a refused
# startup carries pgmesh's FATAL text), no call hangs, every commit reported before the stop is
# on the new primary, new transactions commit through the same pgmesh (same PID) within 15 s of
# the promotion, SHOW DATABASES names the new primary's port (also for a pool no client asked
# after the outage: it retries by itself), and clients of a database on another cluster see no
# error at all. A first host that never answers is given up after server_connect_timeout. Prints
# the timings.
. "$(dirname "$0")/lib.sh"
once_without_extension "nothing it checks depends on it"
. "$(dirname "$0")/../../scripts/pgcluster.sh"

now_ms() { date +%s%3N; }
mkdir -p "$TEST_DIR"
chmod o+x "$TEST_DIR" # the postgres OS user runs both clusters from in here
primary=$TEST_DIR/primary
standby=$TEST_DIR/standby
lib_at_exit "pgcluster_stop $standby"
lib_at_exit "pgcluster_stop $primary"

# Exactness of "every commit reported is on the new primary": synchronous_commit = on with the
# standby in synchronous_standby_names means a COMMIT is answered only after the standby flushed
# its WAL, and a promotion replays all flushed WAL before it accepts writes. With asynchronous
# replication the last commits before the stop could be lost and this test would be wrong.
t_start=$(now_ms)
echo "== primary and synchronous standby"
pgcluster_start_free "$primary" "" wal_level=replica max_wal_senders=4 synchronous_commit=on wal_sender_timeout=5s
p1=$PGCLUSTER_PORT
pw=$(openssl rand -hex 16)
pgcluster_psql "$primary" "$p1" -d postgres -v marketing_password="$pw" -v audit_password="$(openssl rand -hex 16)" \
    -v blocked_password="$(openssl rand -hex 16)" -f "$(dirname "$0")/../../demo/mesh.sql" > "$TEST_DIR/mesh_sql.log" 2>&1
pgcluster_psql "$primary" "$p1" -d media_analytics -c "CREATE TABLE failover_rows (n bigint PRIMARY KEY)" \
    -c "GRANT SELECT, INSERT ON failover_rows TO marketing_domain_role" > /dev/null
mkdir -p "$standby"
[ "$(id -u)" != 0 ] || chown postgres:postgres "$standby"
_pgc_as_owner "$PGBIN/pg_basebackup" -h "$(pgcluster_socket_dir "$primary")" -p "$p1" -U postgres \
    -D "$standby/data" -R -X stream -c fast > "$TEST_DIR/basebackup.log" 2>&1 ||
    fail "pg_basebackup: $(tail -n 5 "$TEST_DIR/basebackup.log")"
# Promoted, it has no standby of its own: no synchronous one to wait for.
pgcluster_start_free "$standby" "" synchronous_commit=on synchronous_standby_names= hot_standby=on
p2=$PGCLUSTER_PORT
# Only now: until the standby streams, every commit on the primary would wait for it.
pgcluster_psql "$primary" "$p1" -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
    -c "SELECT pg_reload_conf()" > /dev/null
for _ in $(seq 1 100); do
    [ "$(pgcluster_psql "$primary" "$p1" -d postgres -A -t -c "SELECT sync_state FROM pg_stat_replication")" = sync ] && break
    sleep 0.1
done
assert_eq sync "$(pgcluster_psql "$primary" "$p1" -d postgres -A -t -c "SELECT sync_state FROM pg_stat_replication")" \
    "the standby's replication state"
echo "primary on port $p1, standby on port $p2 (set up in $(($(now_ms) - t_start)) ms)"

# A host that takes TCP connections and never answers (a failed machine whose address still
# accepts, or drops, packets): listed first, it is given up after server_connect_timeout.
silent_port=$(_lib_free_port)
silent_listener "$silent_port" 60

pf=$TEST_DIR/pgpass
(umask 077 && echo "127.0.0.1:*:*:marketing_domain_role:$pw" > "$pf")
mesh_config
ini_set pgmesh server_connect_timeout 1s
ini_set pgmesh default_pool_size 4
ini_set pgmesh admin_roles global_corporate_audit
metrics_port=$(_lib_free_port)
ini_set pgmesh metrics_listen "127.0.0.1:$metrics_port"
ini_set databases media_analytics \
    "host=127.0.0.1,127.0.0.1 port=$p1,$p2 dbname=media_analytics target_session_attrs=read-write passfile=$pf"
# A database no client uses after its one attempt during the outage: the pool finds the new
# primary by itself (its background retries after a failed login).
ini_set databases quiet_db \
    "host=127.0.0.1,127.0.0.1 port=$p1,$p2 dbname=media_analytics target_session_attrs=read-write passfile=$pf"
ini_set databases silent_first \
    "host=127.0.0.1,127.0.0.1 port=$silent_port,$p2 dbname=media_analytics target_session_attrs=read-write passfile=$pf"
# The suite's own cluster, as a database the failover must not touch.
ini_set databases other_db "host=127.0.0.1 port=$PG_PORT dbname=media_analytics passfile=$PG_PASSFILE"
mesh_start
pid_before=$MESH_PID
tok=$(mint acme regional_analyst)
admin=$(mint acme global_corporate_audit)
current_port() { mesh_psql "$admin" -d pgmesh -F '|' -c 'SHOW DATABASES' | awk -F'|' '$1 == "media_analytics" { print $13 }'; }

assert_eq 1 "$(mesh_psql "$tok" -c 'SELECT 1')" "a query through pgmesh to the primary"
assert_eq "$p1" "$(current_port)" "SHOW DATABASES current_port before the failover"

echo "== load, then the primary stops and the standby is promoted"
stop_file=$TEST_DIR/load.stop
timeout -k 5 40 /usr/bin/python3 "$(dirname "$0")/failover_load.py" --port "$MESH_PORT" --password "$tok" \
    --other-dbname other_db --workers 4 --seconds 30 --stop-file "$stop_file" --out "$TEST_DIR/load.json" &
load=$!
sleep 1.5
t_stop=$(now_ms)
_pgc_as_owner "$PGBIN/pg_ctl" -D "$primary/data" -m immediate -w stop > /dev/null
st=0
out=$(mesh_psql "$tok" -d quiet_db -c 'SELECT 1' 2>&1) || st=$?
[ "$st" != 0 ] || fail "a query on quiet_db succeeded with the primary down and the standby not promoted"
assert_contains "$out" "could not connect to the database server" "quiet_db during the outage"
sleep 0.7
t_promote=$(now_ms)
_pgc_as_owner "$PGBIN/pg_ctl" -D "$standby/data" -w -t 20 promote > /dev/null
t_promoted=$(now_ms)
sleep 2.5
touch "$stop_file"
st=0
wait "$load" || st=$?
[ "$st" = 0 ] || fail "the load exited with status $st: $(cat "$TEST_DIR/load.json" 2>/dev/null | head -c 600)"

echo "== checks"
pgcluster_psql "$standby" "$p2" -d media_analytics -A -t -c "SELECT n FROM failover_rows" > "$TEST_DIR/rows.txt"
/usr/bin/python3 - "$TEST_DIR/load.json" "$TEST_DIR/rows.txt" "$t_stop" "$t_promote" "$t_promoted" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
rows = {int(x) for x in open(sys.argv[2]).read().split()}
t_stop, t_promote, t_promoted = (int(x) for x in sys.argv[3:6])
def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)
# A statement's error carries a SQLSTATE: the connection's loss (08) or the server's shutdown
# (57P01, forwarded from the dying backend). But a FATAL that arrives while psycopg waits for a
# reply, followed by the end of the connection, is raised as "consuming input failed: <the
# server's message>" without one (libpq holds the result; psycopg reports the failed read), as
# it would be from PostgreSQL itself: then the message must be pgmesh's ErrorResponse text, not
# libpq's bare "server closed the connection unexpectedly". A refused startup has no SQLSTATE in
# libpq either; its message must be pgmesh's FATAL, not a refused socket. And a FATAL that
# arrives between statements (right behind the previous statement's ReadyForQuery) goes to libpq's
# notice processor, the next statement failing on the closed connection: the FATAL must be there.
def clean(e):
    m = e["message"]
    if e["where"] == "connect":
        return "FATAL:" in m and any(t in m for t in pgmesh_fatal)
    if e["sqlstate"] is not None:
        return e["sqlstate"][:2] in ("08", "57")
    f = e.get("fatal_between_statements")
    if f and f["sqlstate"][:2] in ("08", "57") and f["message"] in pgmesh_fatal:
        return True
    return any(m.startswith("consuming input failed: " + t + "\nDETAIL:  ") for t in pgmesh_fatal)
# pgmesh's two FATALs here: a linked server went away, or (a client between transactions asking
# for a server, as every client here does at its BEGIN) no host of the entry takes a read-write
# login yet.
pgmesh_fatal = ("server connection lost", "could not connect to the database server")
bad = [e for e in load["errors"] if not clean(e)]
if bad:
    fail(f"{len(bad)} unclean error(s), e.g. {bad[:3]}")
before = [n for n, ms in load["commits"] if ms < t_stop]
after = sorted(ms for n, ms in load["commits"] if ms > t_promote)
if len(before) < 10:
    fail(f"only {len(before)} commits before the stop: no load to fail over")
missing = [n for n, ms in load["commits"] if n not in rows]
if missing:
    fail(f"{len(missing)} commit(s) reported to the client are not on the new primary: {missing[:5]}")
if not after:
    fail("no commit after the promotion")
errs = sorted(e["ms"] for e in load["errors"])
first_err = errs[0] - t_stop if errs else None
print(f"commits: {len(before)} before the stop, {len(after)} after the promotion; "
      f"errors: {len(errs)} ({sum(e['where'] == 'connect' for e in load['errors'])} at connect)")
print(f"stop -> first client error: {first_err} ms; promote -> promoted (pg_ctl -w): {t_promoted - t_promote} ms; "
      f"promote -> first commit: {after[0] - t_promote} ms")
kinds = sorted({(e["where"], e["sqlstate"], e["message"].splitlines()[0][:100],
                 (e.get("fatal_between_statements") or {}).get("sqlstate")) for e in load["errors"]}, key=str)
for k in kinds[:8]:
    print("  error seen:", k)
if after[0] - t_promote > 15000:
    fail(f"the first commit after the promotion took {after[0] - t_promote} ms")
if load["other_errors"]:
    fail(f"the other database's client saw errors: {load['other_errors'][:3]}")
if load["other_ok"] < 10:
    fail(f"the other database's client ran only {load['other_ok']} queries")
print(f"other database: {load['other_ok']} queries, no error")
PY

assert_eq "$pid_before" "$MESH_PID" "pgmesh's PID"
kill -0 "$MESH_PID" || fail "pgmesh is gone"
assert_eq "$p2" "$(current_port)" "SHOW DATABASES current_port after the failover"
assert_eq 1 "$(mesh_psql "$tok" -c 'INSERT INTO failover_rows VALUES (-1)' -c 'SELECT count(*) FROM failover_rows WHERE n = -1')" \
    "a new transaction on the new primary"
grep -q "server connections now go to 127.0.0.1 port $p2" "$MESH_LOG" || fail "no log line for the host change"
http_get "http://127.0.0.1:$metrics_port/metrics" > "$TEST_DIR/metrics.txt"
assert_eq 1 "$(metric_value "$TEST_DIR/metrics.txt" \
    "pgmesh_pool_server_host{database=\"media_analytics\",user=\"marketing_domain_role\",host=\"127.0.0.1\",port=\"$p2\"}")" \
    "pgmesh_pool_server_host after the failover"

echo "== a pool no client asks finds the new primary by itself"
current_port_of() { mesh_psql "$admin" -d pgmesh -F '|' -c 'SHOW DATABASES' | awk -F'|' -v db="$1" '$1 == db { print $13 }'; }
for _ in $(seq 1 50); do [ "$(current_port_of quiet_db)" = "$p2" ] && break; sleep 0.1; done
assert_eq "$p2" "$(current_port_of quiet_db)" "SHOW DATABASES current_port of quiet_db (no client since the outage)"

echo "== a first host that never answers is given up after server_connect_timeout (1 s)"
t0=$(now_ms)
assert_eq 1 "$(mesh_psql "$tok" -d silent_first -c 'SELECT count(*) FROM failover_rows WHERE n = -1')" \
    "a query through silent_first"
echo "served in $(($(now_ms) - t0)) ms"
grep -q "127.0.0.1 port $silent_port did not answer within server_connect_timeout: trying the next host" "$MESH_LOG" ||
    fail "no log line for the host that did not answer"
assert_eq "$p2" "$(current_port_of silent_first)" "SHOW DATABASES current_port of silent_first"
mesh_stop
echo ok
