#!/usr/bin/env bash
# A client's SET of statement_timeout, work_mem or idle_in_transaction_session_timeout is a
# request: at or below its role's value it runs as written; above it, 0, DEFAULT or RESET it runs
# with the role's value, and the client gets a NOTICE saying so, never an error. Simple and
# extended protocol, both pool modes; other spellings of those names stay refused (42501). Then
# pg_dump, which asks for statement_timeout = 0 and idle_in_transaction_session_timeout = 0, runs
# through pgmesh in transaction pooling: the schema, and the tenant's rows only with
# --enable-row-security.
. "$(dirname "$0")/lib.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"
de_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = 'DE'")
mesh_config
de=$(mint DE regional_analyst)

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    out=$(mesh_psql "$de" -c "BEGIN" -c "SET statement_timeout = 0" -c "SHOW statement_timeout" \
        -c "SET work_mem = '4GB'" -c "SHOW work_mem" -c "SET LOCAL statement_timeout = '1h'" \
        -c "SHOW statement_timeout" -c "RESET work_mem" -c "SHOW work_mem" -c "SET statement_timeout = '10s'" \
        -c "SHOW statement_timeout" -c "SET work_mem TO 1024" -c "SHOW work_mem" -c "COMMIT" 2>&1) ||
        fail "$mode: clamped SETs failed: $out"
    assert_eq "NOTICE:  statement_timeout is 30000ms for role \"regional_analyst\": pgmesh set that instead of 0
30s
NOTICE:  work_mem is 131072kB for role \"regional_analyst\": pgmesh set that instead of 4GB
128MB
NOTICE:  statement_timeout is 30000ms for role \"regional_analyst\": pgmesh set that instead of 1h
30s
NOTICE:  work_mem is 131072kB for role \"regional_analyst\": pgmesh set that instead of DEFAULT
128MB
10s
1MB" "$out" "$mode: SETs in a transaction"
    for other in "SET \"statement_timeout\" = 0" "SET statement_timeout = E'0'" "SET work_mem TO E'4GB'" \
        "SELECT set_config('statement_timeout', '0', false)"; do
        out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "$other" -c "SHOW statement_timeout" 2>&1) || true
        assert_contains "$out" "42501" "$mode: $other"
        assert_contains "$out" "30s" "$mode: after $other"
    done
    MESH_DSN=$(mesh_dsn "$de") "$PYTHON" - <<'PY' || fail "$mode: extended protocol"
import os, sys
import psycopg

notices = []
with psycopg.connect(os.environ["MESH_DSN"]) as conn:
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    cur = conn.cursor(binary=True)  # Parse/Bind/Execute even without parameters
    cur.execute("SET statement_timeout = 0")
    cur.execute("SELECT current_setting('statement_timeout')")
    got = cur.fetchone()[0]
    conn.rollback()
ok = got == "30s" and any("pgmesh set that instead of 0" in n for n in notices)
print("extended protocol:", got, notices)
sys.exit(0 if ok else 1)
PY
    mesh_stop
done

ini_set pgmesh pool_mode transaction
mesh_start
PGPASSWORD=$de PGSSLMODE=disable timeout -k 5 120 pg_dump -h 127.0.0.1 -p "$MESH_PORT" -U analyst --schema-only \
    -d media_analytics > "$TEST_DIR/schema.sql" 2> "$TEST_DIR/schema.err" ||
    fail "pg_dump --schema-only through pgmesh: $(cat "$TEST_DIR/schema.err")"
assert_contains "$(cat "$TEST_DIR/schema.sql")" "CREATE TABLE core.fct_playback_sessions" "pg_dump --schema-only"
PGPASSWORD=$de PGSSLMODE=disable timeout -k 5 120 pg_dump -h 127.0.0.1 -p "$MESH_PORT" -U analyst --data-only \
    --enable-row-security -t core.fct_playback_sessions -d media_analytics > "$TEST_DIR/data.sql" 2> "$TEST_DIR/data.err" ||
    fail "pg_dump --data-only --enable-row-security through pgmesh: $(cat "$TEST_DIR/data.err")"
rows=$(awk '/^COPY core.fct_playback_sessions/ {on = 1; next} /^\\\.$/ {on = 0} on' "$TEST_DIR/data.sql" | wc -l)
assert_eq "$de_rows" "$rows" "rows pg_dump --enable-row-security dumped for tenant DE"
mesh_stop
echo "ok: limits clamped with a NOTICE in both pool modes and protocols; pg_dump --schema-only and --data-only --enable-row-security ($rows DE rows) through pgmesh"
