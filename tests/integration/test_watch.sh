#!/usr/bin/env bash
# The watcher (proxy/watch.c): a physical slot that holds back more WAL than slot_wal_warn is
# logged with its name, its [databases] entry and a size, once per crossing (not at every poll,
# not again after a reload, again after it fell below and crossed anew); two databases with
# different collations give exactly one warning naming both entries (and one more after a
# reload); an entry whose cluster is down, and one whose cluster takes connections but never
# answers, each give one log line, pgmesh keeps serving the others and does not spin (its CPU
# time over 5 s stays small).
. "$(dirname "$0")/lib.sh"
once_without_extension "nothing it checks depends on it"

slot=mesh_watch_slot
db_c=watch_coll_c
db_utf8=watch_coll_utf8
cleanup_pg() {
    pg_psql -c "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" || true
    pg_psql -c "DROP DATABASE IF EXISTS $db_c WITH (FORCE)" -c "DROP DATABASE IF EXISTS $db_utf8 WITH (FORCE)" || true
    pg_psql -c "DROP TABLE IF EXISTS watch_wal" || true
    pg_psql -c "ALTER SYSTEM RESET log_connections" -c "SELECT pg_reload_conf()" || true
}
lib_at_exit cleanup_pg
cleanup_pg > /dev/null 2>&1

# Which role the watcher logs in as, from the server's side.
pg_log=$PG_DIR/postgres.log
pg_mark=$(wc -c < "$pg_log")
pg_psql -c "ALTER SYSTEM SET log_connections = on" -c "SELECT pg_reload_conf()" > /dev/null
for _ in $(seq 1 50); do [ "$(pg_psql -c 'SHOW log_connections')" = on ] && break; sleep 0.1; done
watch_logins() { tail -c +"$((pg_mark + 1))" "$pg_log" | grep -E "connection authorized: user=$1 database=$2 .*application_name=pgmesh-watch" || true; }

pg_psql -c "CREATE DATABASE $db_c TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
pg_psql -c "CREATE DATABASE $db_utf8 TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"

# A port nothing listens on: the cluster that is down. One that takes connections and never
# answers: the cluster that hangs (bounded by its own timeout and the test's end).
down_port=$(_lib_free_port)
silent_port=$(_lib_free_port)
silent_listener "$silent_port" 120
conn() { echo "host=127.0.0.1 port=$1 dbname=$2 passfile=$PG_PASSFILE"; }

mesh_config
ini_set pgmesh watch_interval 1s
ini_set pgmesh slot_wal_warn 1MB
ini_set pgmesh server_connect_timeout 2s
ini_set pgmesh admin_roles global_corporate_audit
metrics_port=$(_lib_free_port)
ini_set pgmesh metrics_listen "127.0.0.1:$metrics_port"
ini_set databases coll_c "$(conn "$PG_PORT" "$db_c")"
ini_set databases coll_c_again "$(conn "$PG_PORT" "$db_c")"
ini_set databases coll_utf8 "$(conn "$PG_PORT" "$db_utf8")"
ini_set databases mesh_down "$(conn "$down_port" nowhere)"
ini_set databases mesh_silent "$(conn "$silent_port" nowhere)"
# A physical slot reserves WAL from the last checkpoint's redo point on, and CREATE DATABASE wrote
# the new databases' files to the WAL: a checkpoint first, so the slot starts below 1MB.
pg_psql -c "CHECKPOINT"
pg_psql -c "SELECT 1 FROM pg_create_physical_replication_slot('$slot', true)" > /dev/null
mesh_start
tok=$(mint DE regional_analyst)

# The pair is named in the order its two readings arrived.
pair_re="watch: databases (coll_c \(.* and coll_utf8|coll_utf8 \(.* and coll_c) \(.* have different collations"
echo "== collations: one warning for the pair that differs"
wait_log "$pair_re" 15
wait_log "watch: database mesh_down \(127.0.0.1:$down_port\) not readable" 10
# Three more poll rounds (watch_interval 1s): collations are read once per start, so no more
# lines; the cluster that is down logs no second line and costs no busy loop.
read -r -a st0 < "/proc/$MESH_PID/stat"
sleep 3
read -r -a st1 < "/proc/$MESH_PID/stat"
assert_eq 1 "$(grep -cE "$pair_re" "$MESH_LOG" || true)" "collation warnings naming coll_c and coll_utf8"
line=$(grep -E "$pair_re" "$MESH_LOG" | head -1)
[[ $line =~ datcollate\ (C\ vs\ C.UTF-8|C.UTF-8\ vs\ C)\;\ datctype\ (C\ vs\ C.UTF-8|C.UTF-8\ vs\ C)\) ]] ||
    fail "the values are not in the warning: [$line]"
assert_contains "$line" "postgres_fdw pushes ORDER BY/comparisons down to the remote side" "the risk"
assert_contains "$line" "127.0.0.1:$PG_PORT" "the cluster in the warning"
n=$(grep -E "have different collations" "$MESH_LOG" | grep -c "coll_c_again (.*coll_c \|coll_c (.*coll_c_again " || true)
assert_eq 0 "$n" "warnings for two entries on the same database"
n=$(grep -E "have different collations" "$MESH_LOG" | grep -cE "media_analytics .*coll_c[ _]|coll_c(_again)? .*media_analytics" || true)
assert_eq 0 "$n" "warnings for media_analytics (C) against coll_c (C)"

echo "== the watcher logs in as the first role's server_user"
[ -n "$(watch_logins marketing_domain_role "$db_c")" ] || fail "no watcher login as marketing_domain_role to $db_c"
[ -z "$(watch_logins audit_role "$db_c")" ] || fail "the watcher logged in as audit_role before watch_user said so"

echo "== the cluster that is down: one line, the others served, no busy loop"
# Fields 14 and 15 (utime, stime) in clock ticks; the command name has no blank ("pgmesh").
ticks=$(( (st1[13] + st1[14]) - (st0[13] + st0[14]) ))
hz=$(getconf CLK_TCK)
echo "pgmesh used $ticks ticks (of $hz per s) in 3 s with a cluster down and polls every second"
[ "$ticks" -lt $((hz * 3 / 5)) ] || fail "pgmesh used $ticks clock ticks in 3 s: more than 0.6 s of CPU, a busy loop?"
assert_eq 1 "$(grep -c "watch: database mesh_down" "$MESH_LOG" || true)" "log lines for the cluster that is down"
wait_log "watch: database mesh_silent" 10
line=$(grep "watch: database mesh_silent" "$MESH_LOG" || true)
assert_contains "$line" "watch: database mesh_silent (127.0.0.1:$silent_port) not readable: timeout expired (server_connect_timeout)" \
    "the cluster that never answers"
assert_eq 1 "$(printf '%s\n' "$line" | grep -c .)" "log lines for the cluster that never answers"
assert_eq 42 "$(mesh_psql "$tok" -c 'SELECT 42')" "a query through pgmesh while one cluster is down"

echo "== a slot over slot_wal_warn: one warning per crossing"
assert_eq 0 "$(grep -c "watch: replication slot $slot" "$MESH_LOG" || true)" "slot warnings before the slot held 1MB"
pg_psql -c "CREATE TABLE watch_wal AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g"
wait_log "watch: replication slot $slot \(physical, inactive\) on 127.0.0.1:$PG_PORT \(databases media_analytics, " 10
line=$(grep "watch: replication slot $slot" "$MESH_LOG" | head -1)
echo "$line"
assert_contains "$line" "coll_c, coll_c_again, coll_utf8)" "every entry on the cluster named"
[[ $line =~ retains\ [0-9.]+\ (MB|GB)\ of\ WAL,\ above\ slot_wal_warn\ \(1.0\ MB\) ]] || fail "no size in [$line]"
sleep 2
assert_eq 1 "$(grep -c "watch: replication slot $slot .* above slot_wal_warn" "$MESH_LOG" || true)" \
    "slot warnings after more polls above the threshold"

echo "== the same in /metrics"
http_get "http://127.0.0.1:$metrics_port/metrics" | tail -n +2 > "$TEST_DIR/metrics.txt"
promtool check metrics < "$TEST_DIR/metrics.txt" || fail "promtool check metrics rejected the exposition"
at=database=\"media_analytics\",host=\"127.0.0.1\",port=\"$PG_PORT\"
bytes=$(metric_value "$TEST_DIR/metrics.txt" "pgmesh_slot_retained_wal_bytes{$at,slot=\"$slot\",slot_type=\"physical\",active=\"false\"}")
[ "${bytes:-0}" -gt 1048576 ] || fail "pgmesh_slot_retained_wal_bytes for $slot is '$bytes', want above 1MB"
assert_eq 1 "$(metric_value "$TEST_DIR/metrics.txt" pgmesh_slots_over_warn)" "slots over slot_wal_warn in /metrics"
mismatch() {
    metric_value "$TEST_DIR/metrics.txt" "pgmesh_collation_mismatch{database=\"$1\",host=\"127.0.0.1\",port=\"$PG_PORT\"}"
}
assert_eq 1 "$(mismatch coll_c)" "coll_c's collation mismatch in /metrics"
assert_eq 1 "$(mismatch coll_utf8)" "coll_utf8's collation mismatch in /metrics"
ok=$(metric_value "$TEST_DIR/metrics.txt" "pgmesh_watch_polls_total{$at,result=\"ok\"}")
[ "${ok:-0}" -ge 2 ] || fail "pgmesh_watch_polls_total ok for media_analytics is '$ok', want at least 2"

echo "== the same in the admin console"
admin=$(mint ops global_corporate_audit)
row=$(mesh_psql "$admin" -d pgmesh -F '|' -c 'SHOW SLOTS' | grep "|$slot|")
IFS='|' read -r s_db s_host s_port s_name s_type s_sdb s_active s_bytes s_size s_over <<< "$row"
assert_eq "media_analytics|127.0.0.1|$PG_PORT|physical|0|1" "$s_db|$s_host|$s_port|$s_type|$s_active|$s_over" \
    "SHOW SLOTS's row for $slot"
[ "${s_bytes:-0}" -gt 1048576 ] || fail "SHOW SLOTS: retained_wal_bytes '$s_bytes', want above 1MB"
[[ $s_size =~ ^[0-9.]+\ (MB|GB)$ ]] || fail "SHOW SLOTS: retained_wal '$s_size'"
colls=$(mesh_psql "$admin" -d pgmesh -F '|' -c 'SHOW COLLATIONS')
assert_contains "$colls" "coll_c|127.0.0.1|$PG_PORT|C|C|libc|" "SHOW COLLATIONS for coll_c"
assert_eq 1 "$(grep "^coll_utf8|" <<< "$colls" | awk -F'|' '{ print $NF }')" "coll_utf8's mismatch in SHOW COLLATIONS"
assert_contains "$(grep "^coll_utf8|" <<< "$colls")" "|C.UTF-8|C.UTF-8|libc|" "SHOW COLLATIONS for coll_utf8"

echo "== a reload: collations read again, the slot not warned again"
kill -HUP "$MESH_PID"
wait_log "config reload: .* applied" 10
for _ in $(seq 1 50); do
    [ "$(grep -cE "$pair_re" "$MESH_LOG" || true)" -ge 2 ] && break
    sleep 0.1
done
assert_eq 2 "$(grep -cE "$pair_re" "$MESH_LOG" || true)" "collation warnings after a reload"
sleep 2
assert_eq 1 "$(grep -c "watch: replication slot $slot .* above slot_wal_warn" "$MESH_LOG" || true)" \
    "slot warnings after a reload"

echo "== below, then above again: a second warning"
pg_psql -c "SELECT 1 FROM pg_replication_slot_advance('$slot', pg_current_wal_lsn())" > /dev/null
wait_log "watch: replication slot $slot on .* below slot_wal_warn \(1.0 MB\) again" 10
pg_psql -c "INSERT INTO watch_wal SELECT g, repeat('y', 200) FROM generate_series(1, 20000) g"
for _ in $(seq 1 100); do
    [ "$(grep -c "watch: replication slot $slot .* above slot_wal_warn" "$MESH_LOG" || true)" -ge 2 ] && break
    sleep 0.1
done
assert_eq 2 "$(grep -c "watch: replication slot $slot .* above slot_wal_warn" "$MESH_LOG" || true)" \
    "slot warnings after falling below and crossing again"

echo "== watch_user: the watcher logs in as that role from the next reload"
ini_set pgmesh watch_user audit_role
kill -HUP "$MESH_PID"
for _ in $(seq 1 100); do [ -n "$(watch_logins audit_role "$db_utf8")" ] && break; sleep 0.1; done
[ -n "$(watch_logins audit_role "$db_utf8")" ] || fail "no watcher login as audit_role (watch_user) to $db_utf8"
assert_eq 1 "$(grep -c "watch: database mesh_down" "$MESH_LOG" || true)" "log lines for the cluster that is down, at the end"
mesh_stop
