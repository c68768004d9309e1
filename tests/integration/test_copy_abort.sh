#!/usr/bin/env bash
# A psql killed (kill -9) in the middle of a COPY FROM STDIN, and one killed while a COPY TO
# STDOUT is held up by its full socket, on a pool of one server connection: PostgreSQL is left
# with no COPY running and no transaction open, none of the dead client's rows are committed, the
# next clients get their own claims in a fresh transaction and COPY works for them, and pgmesh
# stays up. While the stalled COPY OUT waits, PostgreSQL must be the one waiting (pgmesh stops
# reading rather than buffering) and pgmesh's peak RSS stays under 32 MiB (memory.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/memory.sh"

mesh_config
ini_set pgmesh default_pool_size 1
mesh_start
TOK_DE=$(mint DE regional_analyst)
TOK_FR=$(mint FR regional_analyst)

pg_psql <<'SQL'
CREATE TABLE core.copy_abort (n bigint, note text,
    tenant text DEFAULT current_setting('request.jwt.claim.tenant', true));
GRANT SELECT, INSERT, DELETE ON core.copy_abort TO marketing_domain_role;
SQL

# Backends of the test database, other than this observer, matching the SQL condition $1.
backends() {
    pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'media_analytics'
                AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND ($1)"
}

# wait_backends N CONDITION WHAT: waits up to 15 s for exactly N such backends.
wait_backends() {
    local i n
    for i in $(seq 1 150); do
        n=$(backends "$2")
        [ "$n" = "$1" ] && return 0
        sleep 0.1
    done
    pg_psql -c "SELECT pid, usename, state, wait_event, left(query, 60) FROM pg_stat_activity
                WHERE datname = 'media_analytics' AND pid <> pg_backend_pid()" >&2
    fail "$3: $n backends where $2, want $1"
}

# bg_psql TOKEN ARGS...: psql through pgmesh in the background, stdin and stdout as redirected by
# the caller (<&0: a background command otherwise reads /dev/null); sets PSQL_PID to psql itself
# (the dying client) and BG_PID to the timeout above it.
bg_psql() {
    local token=$1 i
    shift
    PGHOST=127.0.0.1 PGPORT=$MESH_PORT PGDATABASE=media_analytics PGUSER=analyst PGSSLMODE=disable \
    PGPASSWORD=$token timeout -k 5 60 psql -X -A -t -q -w -v ON_ERROR_STOP=1 "$@" <&0 &
    BG_PID=$!
    PSQL_PID=
    for i in $(seq 1 50); do
        PSQL_PID=$(ps -o pid= --ppid "$BG_PID" | tr -d ' ' || true)
        [ -n "$PSQL_PID" ] && return 0
        sleep 0.1
    done
    fail "bg_psql: no psql under timeout (pid $BG_PID)"
}

# The next client of the pool after a death: its own tenant's claims, a transaction that began
# with its statement (now() is the statement's start), no rows of the dead client, and COPY in
# both directions working.
next_client() {
    local tenant=$1 tok=$2 what="next client ($1) after $3"
    assert_eq "$tenant|regional_analyst|t|t|0" "$(mesh_psql "$tok" -c "SELECT
            current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claim.role'),
            now() = statement_timestamp(), count(*) > 0,
            count(*) FILTER (WHERE country_code <> '$tenant') FROM core.fct_playback_sessions")" \
        "$what: claims, fresh transaction, own rows"
    printf '1\tafter %s\n2\tafter %s\n' "$3" "$3" | mesh_psql "$tok" -c "COPY core.copy_abort (n, note) FROM STDIN"
    assert_eq $'1\n2' "$(mesh_psql "$tok" -c "COPY (SELECT n FROM core.copy_abort
            WHERE note = 'after $3' AND tenant = '$tenant' ORDER BY n) TO STDOUT")" "$what: COPY in and out"
    mesh_psql "$tok" -c "DELETE FROM core.copy_abort WHERE note = 'after $3'"
}

echo "== psql killed mid-COPY FROM STDIN"
mkfifo "$TEST_DIR/in.fifo"
exec 3<> "$TEST_DIR/in.fifo" # held open read-write: psql never sees EOF, only more rows or death
bg_psql "$TOK_DE" -c "COPY core.copy_abort (n, note) FROM STDIN" < "$TEST_DIR/in.fifo" > "$TEST_DIR/in.out" 2>&1
seq 1 200000 | sed 's/$/\tdead client row/' | timeout 30 cat >&3
# The rows reached PostgreSQL through pgmesh and the COPY is waiting for more.
for i in $(seq 1 150); do
    n=$(pg_psql -c "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy
                    WHERE relid = 'core.copy_abort'::regclass")
    [ "$n" -gt 0 ] && break
    sleep 0.1
done
[ "$n" -gt 0 ] || fail "the COPY FROM STDIN shows no rows processed"
echo "PostgreSQL had processed $n rows of the COPY when psql was killed"
kill -KILL "$PSQL_PID"
wait "$BG_PID" 2>/dev/null || true
exec 3>&-
wait_backends 0 "(state = 'active' AND query LIKE 'COPY%') OR state LIKE 'idle in transaction%'" "after the COPY IN death"
assert_eq 0 "$(pg_psql -c "SELECT count(*) FROM core.copy_abort")" "rows of the dead COPY FROM STDIN"
kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh died after the COPY IN death"
next_client FR "$TOK_FR" "COPY IN death"
next_client DE "$TOK_DE" "COPY IN death"

echo "== psql killed while its COPY TO STDOUT is stalled"
mkfifo "$TEST_DIR/out.fifo"
exec 4<> "$TEST_DIR/out.fifo" # never read: psql blocks once the pipe is full
# A target-list SRF streams its rows (one in FROM would be materialized first).
bg_psql "$TOK_DE" -c "COPY (SELECT generate_series(1, 100000000) AS n, repeat('x', 100)) TO STDOUT" \
    > "$TEST_DIR/out.fifo" 2> "$TEST_DIR/out.err"
# psql stalls, its socket fills, pgmesh stops reading, PostgreSQL waits to write.
wait_backends 1 "query LIKE 'COPY%' AND wait_event = 'ClientWrite'" "the stalled COPY TO STDOUT"
sleep 1
assert_mesh_hwm "a stalled COPY TO STDOUT"
kill -KILL "$PSQL_PID"
wait "$BG_PID" 2>/dev/null || true
exec 4>&-
wait_backends 0 "(state = 'active' AND query LIKE 'COPY%') OR state LIKE 'idle in transaction%'" "after the COPY OUT death"
kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh died after the COPY OUT death"
next_client FR "$TOK_FR" "COPY OUT death"
next_client DE "$TOK_DE" "COPY OUT death"
# How pgmesh dealt with each dead client (closing the server connection is one clean way).
grep -E 'closing server connection' "$MESH_LOG" || true
if grep -E '] (ERROR|WARNING) ' "$MESH_LOG"; then fail "pgmesh logged errors or warnings"; fi
mesh_stop
