#!/usr/bin/env bash
# Results and messages far larger than pgmesh's buffers stream through it (stream.c), in
# transaction pooling with a token: a 1,000,000-row SELECT read by psql and by libpq's single-row
# mode, byte for byte the same as straight from PostgreSQL; one Query of several results with
# notices between rows and an error mid-result, psql's output the same as straight; a 96 MiB
# Bind parameter (three times the RSS bound), to an unnamed and to a named statement (its length
# and md5 on the server match the client's), then back whole as one DataRow; a single 48 MiB
# CopyData message; a COPY the client ends with CopyFail leaves nothing behind. pgmesh's peak RSS
# stays under 32 MiB throughout (memory.sh).
. "$(dirname "$0")/lib.sh"
once_without_extension "streaming runs after the transaction start"
. "$(dirname "$0")/memory.sh"

ROWS=1000000
STREAM=$BUILD/tests/integration/stream

mesh_config
mesh_start
assert_mesh_hwm "start-up"
TOKEN=$(mint DE regional_analyst)
export TOKEN TENANT=DE

echo "== $ROWS-row SELECT: psql and libpq single-row mode through pgmesh, psql straight to PostgreSQL"
sql="SELECT g, md5(g::text) FROM generate_series(1, $ROWS) g"
pg_psql -c "$sql" > "$TEST_DIR/select_pg.txt"
mesh_psql "$TOKEN" -c "$sql" > "$TEST_DIR/select_psql.txt"
timeout -k 5 60 "$STREAM" select "$ROWS" > "$TEST_DIR/select_libpq.txt"
want=$(md5sum < "$TEST_DIR/select_pg.txt")
for f in select_psql select_libpq; do
    assert_eq "$ROWS" "$(wc -l < "$TEST_DIR/$f.txt")" "rows in $f.txt"
    assert_eq "$want" "$(md5sum < "$TEST_DIR/$f.txt")" "md5 of $f.txt against the direct SELECT"
done
assert_eq "$ROWS|$(printf %s "$ROWS" | md5sum | cut -d' ' -f1)" "$(tail -n 1 "$TEST_DIR/select_libpq.txt")" "last row"
rm -f "$TEST_DIR"/select_*.txt
assert_mesh_hwm "the $ROWS-row SELECTs"

echo "== rows, notices, several results and an error mid-result in one Query, in the server's order"
# pgmesh copies runs of plain replies at once: what is not plain (a notice, an error, the next
# ReadyForQuery) must still come between the same rows as straight from PostgreSQL.
pg_psql <<'SQL'
CREATE FUNCTION core.stream_noisy(i int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    IF i % 250 = 0 THEN RAISE NOTICE 'row %', i; END IF;
    RETURN i;
END $$;
SQL
sql="SELECT core.stream_noisy(g) FROM generate_series(1, 1000) g; SELECT 'second', count(*) FROM generate_series(1, 3);
SELECT core.stream_noisy(g), 1 / (700 - g) FROM generate_series(1, 1000) g; SELECT 'not reached'"
pg_psql -v ON_ERROR_STOP=0 -c "$sql" > "$TEST_DIR/mixed_pg.txt" 2>&1 || true
mesh_psql "$TOKEN" -v ON_ERROR_STOP=0 -c "$sql" > "$TEST_DIR/mixed_mesh.txt" 2>&1 || true
grep -q 'division by zero' "$TEST_DIR/mixed_pg.txt" || fail "the direct run did not end in the error: $(tail -3 "$TEST_DIR/mixed_pg.txt")"
assert_eq "$(md5sum < "$TEST_DIR/mixed_pg.txt")" "$(md5sum < "$TEST_DIR/mixed_mesh.txt")" \
    "the mixed Query's output through pgmesh against straight from PostgreSQL ($(diff "$TEST_DIR/mixed_pg.txt" "$TEST_DIR/mixed_mesh.txt" | head -5))"
assert_eq "1000" "$(grep -c '^[0-9]*$' "$TEST_DIR/mixed_mesh.txt")" "rows of the first SELECT"
assert_eq "row 250|row 500|row 750|row 1000|row 250|row 500" \
    "$(grep -o 'row [0-9]*' "$TEST_DIR/mixed_mesh.txt" | paste -sd'|')" "notices, in order"
assert_eq "1" "$(mesh_psql "$TOKEN" -c "SELECT 1")" "the connection's next statement"

echo "== a 96 MiB Bind parameter, echoed back as a 96 MiB DataRow"
timeout -k 5 90 "$STREAM" bind 96
assert_mesh_hwm "the 96 MiB Bind and DataRow"

echo "== one 48 MiB CopyData message"
pg_psql <<'SQL'
CREATE TABLE core.stream_copy (id serial PRIMARY KEY, note text NOT NULL,
    tenant text DEFAULT current_setting('request.jwt.claim.tenant', true));
GRANT SELECT, INSERT ON core.stream_copy TO marketing_domain_role;
GRANT USAGE ON SEQUENCE core.stream_copy_id_seq TO marketing_domain_role;
SQL
timeout -k 5 90 "$STREAM" copydata 48 core.stream_copy
assert_mesh_hwm "the 48 MiB CopyData"

echo "== COPY FROM STDIN ended by the client's CopyFail"
timeout -k 5 30 "$STREAM" copyfail core.stream_copy

kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh exited"
mesh_stop
