#!/usr/bin/env bash
# The admin console (dbname=pgmesh). With a known state (a pool of one server connection, tenant
# acme's client inside a transaction on it, tenant globex's client waiting for it) SHOW POOLS,
# CLIENTS, SERVERS, TENANTS, STATS, DATABASES, CONFIG and VERSION say so through psql (simple
# protocol) and psycopg (extended protocol; numbers come back as ints). A token whose role
# admin_roles does not list is refused with 28000; admin_users logs in over the Unix socket without
# a token. RELOAD applies an edited file; PAUSE and RESUME under a running pgbench cost it no
# error; KILL_CLIENT ends one client and not the others; SHUTDOWN WAIT lets an open transaction
# commit.
. "$(dirname "$0")/lib.sh"
once_without_extension "the console never reaches a server"

PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"
HELPER=$(dirname "$0")/admin.py
ME=$(id -un)

mesh_config
ini_set pgmesh default_pool_size 1
ini_set pgmesh query_wait_timeout 60s
ini_set pgmesh admin_roles "mesh_admin, ops"
ini_set pgmesh admin_users "$ME"
# A role whose idle transactions are ended, for the tenants' limit count.
ini_set roles limited_analyst "server_user=marketing_domain_role idle_in_transaction_timeout=1s"
pg_psql -c "DROP TABLE IF EXISTS admin_t" -c "CREATE TABLE admin_t (tag text)" \
    -c "GRANT INSERT, SELECT ON admin_t TO marketing_domain_role"
lib_at_exit 'pg_psql -c "DROP TABLE IF EXISTS admin_t"'
mesh_start
acme=$(mint acme regional_analyst)
globex=$(mint globex regional_analyst)
admin=$(mint ops mesh_admin)

# admin_sql COMMAND...: the console through psql over TCP, fields separated by |.
admin_sql() {
    mesh_psql "$admin" -d pgmesh -F '|' "$@"
}
admin_py() {
    "$PYTHON" "$HELPER" "$(mesh_dsn "$admin" pgmesh)" "$@"
}

echo "== who may connect"
st=0
out=$(mesh_psql "$acme" -d pgmesh -c 'SHOW POOLS' 2>&1) || st=$?
[ "$st" != 0 ] || fail "a token of role regional_analyst got into the admin console"
assert_contains "$out" 'role "regional_analyst" may not use the admin console; list it in admin_roles'
# libpq does not print a failed connection's SQLSTATE: pgmesh's log line has it.
wait_log 'FATAL 28000: role "regional_analyst" may not use the admin console' 5
assert_eq "pgmesh 0.1.0" "$(admin_sql -c 'SHOW VERSION')" "SHOW VERSION over TCP with a token"
# Over the Unix socket the OS user is enough: no password is asked for (-w would fail then).
out=$(PGPASSWORD= timeout 20 psql -X -A -t -q -w -h "$TEST_DIR" -p "$MESH_PORT" -U "$ME" -d pgmesh \
    -c 'show version;')
assert_eq "pgmesh 0.1.0" "$out" "SHOW VERSION over the Unix socket as $ME"
wait_log "admin console login \(Unix socket peer, admin_users\): $ME"

echo "== a known state: acme in a transaction on the pool's one server, globex waiting"
{
    echo "BEGIN;"
    echo "INSERT INTO admin_t VALUES ('acme');"
    echo "SELECT 'in acme';"
    for _ in $(seq 1 600); do [ -f "$TEST_DIR/go" ] && break; sleep 0.1; done
    echo "COMMIT;"
} | mesh_psql "$acme" -d "dbname=media_analytics application_name=acme_tx" -f - > "$TEST_DIR/acme.out" 2>&1 &
acme_pid=$!
for _ in $(seq 1 100); do grep -q "in acme" "$TEST_DIR/acme.out" 2>/dev/null && break; sleep 0.1; done
grep -q "in acme" "$TEST_DIR/acme.out" || fail "acme's transaction did not start: $(cat "$TEST_DIR/acme.out")"
mesh_psql "$globex" -d "dbname=media_analytics application_name=globex_wait" -c "SELECT 'globex done'" > "$TEST_DIR/globex.out" 2>&1 &
globex_pid=$!
for _ in $(seq 1 100); do
    [ "$(admin_sql -c 'SHOW POOLS' | cut -d'|' -f4)" = 1 ] && break
    sleep 0.1
done

pools=$(admin_sql -c 'SHOW POOLS')
echo "$pools"
IFS='|' read -r db user cl_active cl_waiting sv_active sv_idle sv_used sv_tested sv_login maxwait maxwait_us mode size paused <<< "$pools"
assert_eq "media_analytics|marketing_domain_role" "$db|$user" "SHOW POOLS database and user"
assert_eq "1|1|1|0|0|0" "$cl_active|$cl_waiting|$sv_active|$sv_idle|$sv_login|$paused" \
    "SHOW POOLS cl_active|cl_waiting|sv_active|sv_idle|sv_login|paused"
assert_eq "transaction|1" "$mode|$size" "SHOW POOLS pool_mode and pool_size"

clients=$(admin_sql -c 'SHOW CLIENTS')
echo "$clients"
acme_row=$(grep '|acme_tx|' <<< "$clients")
globex_row=$(grep '|globex_wait|' <<< "$clients")
IFS='|' read -r type user db state addr port laddr lport ctime rtime wait wait_us acme_id acme_link tls app tenant role <<< "$acme_row"
assert_eq "C|regional_analyst|media_analytics|active|127.0.0.1" "$type|$user|$db|$state|$addr" "acme's client"
assert_eq "acme|regional_analyst|$MESH_PORT" "$tenant|$role|$lport" "acme's tenant, role and local port"
[ -n "$acme_link" ] || fail "acme's client has no server link"
IFS='|' read -r type user db state addr port laddr lport ctime rtime wait wait_us globex_id globex_link tls app tenant role <<< "$globex_row"
assert_eq "waiting|globex||" "$state|$tenant|$globex_link|" "globex's client"
assert_contains "$clients" "|pgmesh|idle|" "the console's own client"

servers=$(admin_sql -c 'SHOW SERVERS')
echo "$servers"
IFS='|' read -r type user db state addr port laddr lport ctime rtime sid link pid tls tenant role enforced <<< "$(grep '|active|' <<< "$servers")"
assert_eq "S|marketing_domain_role|media_analytics|$acme_link|$acme_id|acme" "$type|$user|$db|$sid|$link|$tenant" \
    "the server acme holds"
[ "$pid" -gt 0 ] || fail "SHOW SERVERS remote_pid: $pid"

echo "== the same through psycopg (extended protocol): numbers are ints"
out=$(admin_py 'SHOW POOLS')
echo "$out"
assert_contains "$out" "database='media_analytics' | user='marketing_domain_role' | cl_active=1 | cl_waiting=1 | sv_active=1"
out=$(admin_py 'show clients;' prepare)
assert_contains "$out" "state='waiting'"
assert_contains "$out" "id=$globex_id | link=None"
out=$(admin_py 'SHOW TENANTS')
assert_contains "$out" "tenant='acme' | clients=1"
assert_contains "$out" "tenant='globex' | clients=1"
st=0
out=$(admin_py 'SHOW NONSENSE') || st=$?
assert_eq 3 "$st" "an unknown SHOW through psycopg"
assert_contains "$out" 'ERROR 42601 unknown admin console command "NONSENSE"'
st=0
out=$(admin_sql -c 'DROP TABLE admin_t' 2>&1) || st=$?
[ "$st" != 0 ] || fail "DROP TABLE succeeded in the admin console"
assert_contains "$out" 'unknown admin console command "DROP"'
assert_contains "$out" "SHOW POOLS, SHOW CLIENTS"
# Binary results (what pgJDBC asks for once a statement is prepared): int8 in 8 bytes, text as is.
out=$(admin_py 'SHOW POOLS' binary)
assert_contains "$out" "database='media_analytics' | user='marketing_domain_role' | cl_active=1 | cl_waiting=1 | sv_active=1" \
    "SHOW POOLS in binary"
st=0
out=$(admin_sql -c 'SHOW POOLS please' 2>&1) || st=$?
[ "$st" != 0 ] || fail "SHOW with two words succeeded"
assert_contains "$out" "usage: SHOW what"
# What drivers send at connect, and an empty query, are answered.
assert_eq "" "$(admin_sql -c 'SET extra_float_digits = 3' -c "SET application_name = 'x;y'" -c ';')" "SET and an empty query"

echo "== the transaction commits, globex gets the server"
touch "$TEST_DIR/go"
wait "$acme_pid" || fail "acme's transaction failed: $(cat "$TEST_DIR/acme.out")"
wait "$globex_pid" || fail "globex's query failed: $(cat "$TEST_DIR/globex.out")"
assert_contains "$(cat "$TEST_DIR/globex.out")" "globex done"
tenants=$(admin_sql -c 'SHOW TENANTS')
echo "$tenants"
IFS="|" read -r t clients xacts queries recv sent wait maxwait guard enforce limit switches held <<< "$(grep '^globex|' <<< "$tenants")"
assert_eq "0|1|1" "$clients|$xacts|$queries" "globex: clients, transactions, queries"
[ "$maxwait" -gt 0 ] && [ "$wait" -ge "$maxwait" ] || fail "globex waited: total $wait us, max $maxwait us"
[ "$recv" -gt 0 ] && [ "$sent" -gt 0 ] || fail "globex's bytes: $recv received, $sent sent"
IFS="|" read -r t clients xacts queries recv sent wait maxwait guard enforce limit switches held <<< "$(grep '^acme|' <<< "$tenants")"
assert_eq "0|1|4" "$clients|$xacts|$queries" "acme: clients, transactions (BEGIN ... COMMIT), queries"
# A refused statement is counted for its tenant.
mesh_psql "$acme" -c "SET request.jwt.claim.tenant = 'globex'" > /dev/null 2>&1 || true
IFS="|" read -r t clients xacts queries recv sent wait maxwait guard enforce limit switches held <<< "$(admin_sql -c 'SHOW TENANTS' | grep '^acme|')"
assert_eq "1|0" "$guard|$limit" "acme's guard refusals and limit ends"
# A transaction ended by a role limit is counted for its tenant.
st=0
out=$(mesh_psql "$(mint initech limited_analyst)" -c 'BEGIN' -c 'SELECT pg_sleep(0)' -c '\! sleep 2' -c 'SELECT 1' 2>&1) || st=$?
[ "$st" != 0 ] || fail "an idle transaction outlived idle_in_transaction_timeout"
IFS="|" read -r t clients xacts queries recv sent wait maxwait guard enforce limit switches held <<< "$(admin_sql -c 'SHOW TENANTS' | grep '^initech|')"
assert_eq "0|1" "$clients|$limit" "initech's clients and limit ends"
stats=$(admin_sql -c 'SHOW STATS')
echo "$stats"
IFS='|' read -r db xacts queries recv sent xtime qtime wtime rest <<< "$stats"
[ "$db" = media_analytics ] && [ "$xacts" -ge 3 ] && [ "$queries" -ge 6 ] && [ "$wtime" -gt 0 ] \
    || fail "SHOW STATS: $stats"
IFS='|' read -r -a cols <<< "$stats"
assert_eq "1|0|1" "${cols[15]}|${cols[16]}|${cols[17]}" "SHOW STATS guard_refusals|enforcement_refusals|limit_ended_xacts"
out=$(admin_py 'SHOW STATS')
assert_contains "$out" "database='media_analytics' | total_xact_count=$xacts |"

echo "== pgJDBC: a PreparedStatement past prepareThreshold (int8 columns in binary)"
JDBC_JAR=${JDBC_JAR:-/usr/share/java/postgresql.jar}
if [ -f "$JDBC_JAR" ] && command -v javac > /dev/null; then
    timeout -k 5 60 javac -d "$TEST_DIR/classes" -cp "$JDBC_JAR" "$(dirname "$0")/../clients/java/AdminJdbc.java" \
        || fail "javac AdminJdbc.java"
    out=$(MESH_PORT=$MESH_PORT ADMIN_TOKEN=$admin timeout -k 5 60 java -cp "$TEST_DIR/classes:$JDBC_JAR" AdminJdbc 2>&1) \
        || fail "AdminJdbc: $out"
    echo "$out"
    assert_contains "$out" "pools: media_analytics pool_size=1 type=int8"
    assert_contains "$out" "version: pgmesh 0.1.0"
else
    echo "skipped: no $JDBC_JAR or javac (make deps installs them)"
fi

echo "== SHOW DATABASES, SHOW CONFIG, RELOAD"
IFS='|' read -r name host port dbname force size mode maxc cur paused disabled <<< "$(admin_sql -c 'SHOW DATABASES')"
assert_eq "media_analytics|127.0.0.1|$PG_PORT|media_analytics|1|0" "$name|$host|$port|$dbname|$size|$paused" "SHOW DATABASES"
assert_eq "default_pool_size|1|20|yes|pgmesh" "$(admin_sql -c 'SHOW CONFIG' | grep '^default_pool_size|')" "SHOW CONFIG before RELOAD"
assert_eq "query_wait_timeout|60s|30s|yes|pgmesh" "$(admin_sql -c 'SHOW CONFIG' | grep '^query_wait_timeout|')" "a duration in SHOW CONFIG"
ini_set pgmesh default_pool_size 4
assert_eq "default_pool_size|1|20|yes|pgmesh" "$(admin_sql -c 'SHOW CONFIG' | grep '^default_pool_size|')" "SHOW CONFIG before RELOAD"
admin_sql -c 'RELOAD' > /dev/null
assert_eq "default_pool_size|4|20|yes|pgmesh" "$(admin_sql -c 'SHOW CONFIG' | grep '^default_pool_size|')" "SHOW CONFIG after RELOAD"
assert_contains "$(admin_py RELOAD)" "STATUS RELOAD" "RELOAD through psycopg"
ini_set pgmesh default_pool_size nonsense
st=0
out=$(admin_sql -v VERBOSITY=verbose -c 'RELOAD' 2>&1) || st=$?
[ "$st" != 0 ] || fail "RELOAD of a bad file succeeded"
assert_contains "$out" "F0000"
assert_contains "$out" "configuration not reloaded, nothing changed"
ini_set pgmesh default_pool_size 4

echo "== PAUSE and RESUME while pgbench runs"
timeout 120 "$PGBIN/pgbench" -i -s 1 -q -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres media_analytics \
    > "$TEST_DIR/pgbench-init.txt" 2>&1 || { cat "$TEST_DIR/pgbench-init.txt"; fail "pgbench -i"; }
pg_psql -c "GRANT SELECT, INSERT, UPDATE ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO marketing_domain_role"
lib_at_exit 'pg_psql -c "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"'
PGPASSWORD=$acme PGSSLMODE=disable timeout -k 5 60 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" -U analyst \
    -c 4 -T 5 -n media_analytics > "$TEST_DIR/pgbench.txt" 2>&1 &
bench=$!
sleep 1.5
t0=$(date +%s%N)
assert_eq "" "$(admin_sql -c 'PAUSE media_analytics')" "PAUSE"
IFS='|' read -r db user cl_active cl_waiting sv_active rest <<< "$(admin_sql -c 'SHOW POOLS')"
assert_eq "0" "$sv_active" "servers lent right after PAUSE returned"
assert_eq "1" "$(admin_sql -c 'SHOW DATABASES' | cut -d'|' -f10)" "SHOW DATABASES paused"
sleep 1
IFS='|' read -r db user cl_active cl_waiting sv_active rest <<< "$(admin_sql -c 'SHOW POOLS')"
assert_eq "0" "$sv_active" "servers lent while paused"
[ "$cl_waiting" -ge 1 ] || fail "no pgbench client waits while paused ($cl_waiting)"
admin_py 'RESUME' > /dev/null
# RELOAD under the same load (a changed pool size, applied to the running pool).
ini_set pgmesh default_pool_size 2
assert_eq "" "$(admin_sql -c 'RELOAD')" "RELOAD while pgbench runs"
for _ in $(seq 1 50); do
    [ "$(admin_sql -c 'SHOW POOLS' | cut -d'|' -f13)" = 2 ] && break
    sleep 0.1
done
assert_eq "2" "$(admin_sql -c 'SHOW POOLS' | cut -d'|' -f13)" "pool_size after RELOAD under load"
echo "paused for $(( ($(date +%s%N) - t0) / 1000000 )) ms with $cl_waiting client(s) waiting"
wait "$bench" || { cat "$TEST_DIR/pgbench.txt"; fail "pgbench failed across PAUSE and RESUME"; }
report=$(cat "$TEST_DIR/pgbench.txt")
assert_not_contains "$report" "error" "pgbench across PAUSE and RESUME"
assert_not_contains "$report" "aborted" "pgbench across PAUSE and RESUME"
ini_set pgmesh default_pool_size 1
admin_sql -c 'RELOAD' > /dev/null
echo "pgbench across PAUSE/RESUME and RELOAD: $(grep -E '^number of transactions actually processed' <<< "$report")"
st=0
out=$(admin_sql -c 'PAUSE nosuchdb' 2>&1) || st=$?
[ "$st" != 0 ] || fail "PAUSE of an unknown database succeeded"
assert_contains "$out" 'database "nosuchdb" does not exist'

echo "== KILL_CLIENT ends one client, the others go on"
rm -f "$TEST_DIR/go"
idle_client() {
    {
        echo "SELECT 'first $1';"
        for _ in $(seq 1 600); do [ -f "$TEST_DIR/go" ] && break; sleep 0.1; done
        echo "SELECT 'second $1';"
    } | mesh_psql "$acme" -d "dbname=media_analytics application_name=$1" -v VERBOSITY=verbose -f - > "$TEST_DIR/$1.out" 2>&1 \
        || echo "psql exited with status $?" >> "$TEST_DIR/$1.out"
}
idle_client victim &
victim=$!
idle_client bystander &
bystander=$!
for _ in $(seq 1 100); do
    grep -q "first victim" "$TEST_DIR/victim.out" 2>/dev/null && grep -q "first bystander" "$TEST_DIR/bystander.out" 2>/dev/null && break
    sleep 0.1
done
vid=$(admin_sql -c 'SHOW CLIENTS' | grep '|victim|' | cut -d'|' -f13)
[ -n "$vid" ] || fail "the victim is not in SHOW CLIENTS"
assert_eq "" "$(admin_sql -c "KILL_CLIENT $vid")" "KILL_CLIENT"
st=0
out=$(admin_sql -c 'KILL_CLIENT 999999' 2>&1) || st=$?
[ "$st" != 0 ] || fail "KILL_CLIENT of an unknown id succeeded"
assert_contains "$out" "no client with id 999999"
touch "$TEST_DIR/go"
wait "$victim"
wait "$bystander"
assert_not_contains "$(cat "$TEST_DIR/bystander.out")" "psql exited" "the other client"
assert_contains "$(cat "$TEST_DIR/victim.out")" "57P01"
assert_not_contains "$(cat "$TEST_DIR/victim.out")" "second victim" "the killed client"
assert_contains "$(cat "$TEST_DIR/bystander.out")" "second bystander" "the other client"
assert_eq "1" "$(mesh_psql "$globex" -c 'SELECT 1')" "a new client after KILL_CLIENT"

echo "== SHUTDOWN WAIT lets an open transaction commit"
rm -f "$TEST_DIR/go"
pg_psql -c "TRUNCATE admin_t"
{
    echo "BEGIN;"
    echo "INSERT INTO admin_t VALUES ('last');"
    echo "SELECT 'in last';"
    for _ in $(seq 1 600); do [ -f "$TEST_DIR/go" ] && break; sleep 0.1; done
    echo "COMMIT;"
} | mesh_psql "$acme" -f - > "$TEST_DIR/last.out" 2>&1 &
last=$!
for _ in $(seq 1 100); do grep -q "in last" "$TEST_DIR/last.out" 2>/dev/null && break; sleep 0.1; done
admin_sql -c 'SHUTDOWN WAIT' > /dev/null 2>&1 || true
wait_log "SHUTDOWN WAIT from the admin console: shutting down" 5
sleep 0.3
kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh exited with a transaction open"
touch "$TEST_DIR/go"
wait "$last" || fail "the open transaction failed: $(cat "$TEST_DIR/last.out")"
assert_eq "1" "$(pg_psql -c "SELECT count(*) FROM admin_t WHERE tag = 'last'")" "the row committed during SHUTDOWN WAIT"
for _ in $(seq 1 100); do kill -0 "$MESH_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$MESH_PID" 2>/dev/null && fail "pgmesh still running after its last client left"
MESH_PID=

echo "== every command was audited, with who gave it"
grep -q "admin console (role mesh_admin): SHOW POOLS" "$MESH_LOG" || fail "no audit line for SHOW POOLS"
grep -q "admin console (role mesh_admin): RELOAD" "$MESH_LOG" || fail "no audit line for RELOAD"
grep -q "admin console (role mesh_admin): SHUTDOWN WAIT" "$MESH_LOG" || fail "no audit line for SHUTDOWN WAIT"
grep -q "admin console (role $ME): show version" "$MESH_LOG" || fail "no audit line for the Unix-socket login's command"
echo "admin console: ok"
