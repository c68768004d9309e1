#!/usr/bin/env bash
# Asynchronous server messages reach the client through pgmesh. Transaction pooling:
# RAISE NOTICE from a DO block, from a function called per row (each notice before its row, simple
# and extended protocol) and 20,000 of them from one statement, and the WARNING of a COMMIT
# outside a transaction, all as psql and libpq (notices.c) show them, naming the token's tenant.
# Session pooling: LISTEN, then NOTIFY through pgmesh and straight to PostgreSQL; the listener
# gets both payloads while idle (notices.c) and psql prints the notification after its command.
. "$(dirname "$0")/lib.sh"

NOTICES=$BUILD/tests/integration/notices

mesh_config
mesh_start
TOKEN=$(mint DE regional_analyst)
export TOKEN TENANT=DE

pg_psql <<'SQL'
CREATE FUNCTION core.notice_row(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'row % for %', n, current_setting('request.jwt.claim.tenant', true);
    RETURN n;
END $$;
SQL

echo "== NoticeResponse, transaction pooling"
mesh_psql "$TOKEN" -c "DO \$\$ BEGIN RAISE NOTICE 'hello from %',
    current_setting('request.jwt.claim.tenant'); END \$\$" 2> "$TEST_DIR/err.txt"
assert_eq "NOTICE:  hello from DE" "$(cat "$TEST_DIR/err.txt")" "psql stderr after RAISE NOTICE in DO"

out=$(mesh_psql "$TOKEN" -c "SELECT core.notice_row(g) FROM generate_series(1, 3) g" 2> "$TEST_DIR/err.txt")
assert_eq $'1\n2\n3' "$out" "rows of the function raising notices"
assert_eq $'NOTICE:  row 1 for DE\nNOTICE:  row 2 for DE\nNOTICE:  row 3 for DE' "$(cat "$TEST_DIR/err.txt")" \
    "psql stderr: one notice per row"

mesh_psql "$TOKEN" -c "DO \$\$ BEGIN FOR i IN 1..20000 LOOP RAISE NOTICE 'notice % of 20000', i;
    END LOOP; END \$\$" 2> "$TEST_DIR/err.txt"
assert_eq 20000 "$(grep -c '^NOTICE:  notice [0-9]* of 20000$' "$TEST_DIR/err.txt")" "notices from one DO"
assert_eq "NOTICE:  notice 20000 of 20000" "$(tail -n 1 "$TEST_DIR/err.txt")" "last of the 20000 notices"

mesh_psql "$TOKEN" -c "COMMIT" 2> "$TEST_DIR/err.txt"
assert_eq "WARNING:  there is no transaction in progress" "$(cat "$TEST_DIR/err.txt")" "psql stderr after a lone COMMIT"

timeout -k 5 60 "$NOTICES" extended 50

echo "== NotificationResponse, session pooling"
mesh_stop
ini_set pgmesh pool_mode session
mesh_start
timeout -k 5 60 "$NOTICES" listen mesh_events 2 > "$TEST_DIR/listen.out" &
listener=$!
for i in $(seq 1 100); do
    grep -q '^listening$' "$TEST_DIR/listen.out" && break
    sleep 0.1
done
grep -q '^listening$' "$TEST_DIR/listen.out" || fail "the listener did not LISTEN within 10 s"
mesh_psql "$TOKEN" -c "SELECT pg_notify('mesh_events',
    'through pgmesh, tenant ' || current_setting('request.jwt.claim.tenant'))" > /dev/null
pg_psql -c "NOTIFY mesh_events, 'straight to PostgreSQL'"
wait "$listener" || fail "the listener failed (status $?)"
assert_eq $'listening\nmesh_events|through pgmesh, tenant DE\nmesh_events|straight to PostgreSQL' \
    "$(cat "$TEST_DIR/listen.out")" "notifications received by the idle listener"

# psql shows a notification when the command it arrived during ends.
mesh_psql "$TOKEN" -c "LISTEN psql_events" -c "SELECT pg_sleep(4)" > "$TEST_DIR/psql_listen.out" 2>&1 &
listener=$!
for i in $(seq 1 100); do
    n=$(pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(4)' AND state = 'active'")
    [ "$n" = 1 ] && break
    sleep 0.1
done
assert_eq 1 "$n" "psql listening and sleeping"
pg_psql -c "NOTIFY psql_events, 'hello psql'"
wait "$listener" || fail "the psql listener failed (status $?)"
assert_contains "$(cat "$TEST_DIR/psql_listen.out")" \
    'Asynchronous notification "psql_events" with payload "hello psql" received from server process with PID' \
    "psql output"
mesh_stop
