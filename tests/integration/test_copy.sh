#!/usr/bin/env bash
# COPY streams through pgmesh in transaction pooling with a token: 1,000,000 rows COPY FROM STDIN
# (all there, byte for byte, each row stamped with the token's tenant by a column default), COPY
# inside a transaction rolled back and committed, then COPY TO STDOUT in text (also over TLS)
# and binary, byte for byte what the same COPY straight to PostgreSQL gives. pgmesh's peak RSS
# stays under 32 MiB throughout (memory.sh).
. "$(dirname "$0")/lib.sh"
once_without_extension "COPY streams after the transaction start"
. "$(dirname "$0")/memory.sh"

ROWS=1000000
# The rows carry non-ASCII text; both psql runs must send and receive the same bytes.
export PGCLIENTENCODING=UTF8

mesh_config
mesh_start
assert_mesh_hwm "start-up"
TOK=$(mint DE regional_analyst)

pg_psql <<'SQL'
CREATE TABLE core.copy_rows (n int PRIMARY KEY, note text NOT NULL,
    tenant text DEFAULT current_setting('request.jwt.claim.tenant', true));
GRANT SELECT, INSERT, DELETE ON core.copy_rows TO marketing_domain_role;
SQL

echo "== COPY FROM STDIN, $ROWS rows"
awk -v n="$ROWS" 'BEGIN { for (i = 1; i <= n; i++) printf "%d\tGrüße, Zeile %d von %d: %d\n", i, i, n, i * 7919 % 1000003 }' \
    > "$TEST_DIR/rows.tsv"
mesh_psql "$TOK" -c "COPY core.copy_rows (n, note) FROM STDIN" < "$TEST_DIR/rows.tsv"
want_md5=$(md5sum < "$TEST_DIR/rows.tsv" | cut -d' ' -f1)
got=$(mesh_psql "$TOK" -c "SELECT count(*), count(*) FILTER (WHERE tenant = 'DE'),
        md5(string_agg(n || E'\t' || note, E'\n' ORDER BY n) || E'\n') FROM core.copy_rows")
assert_eq "$ROWS|$ROWS|$want_md5" "$got" "rows, rows stamped DE, md5 of the table through pgmesh"
assert_eq "$ROWS" "$(pg_psql -c 'SELECT count(*) FROM core.copy_rows')" "rows committed, seen straight from PostgreSQL"
assert_mesh_hwm "COPY FROM STDIN of $ROWS rows"

echo "== COPY FROM STDIN inside BEGIN ... ROLLBACK, then inside BEGIN ... COMMIT"
# The transaction spans three Queries, so pgmesh must keep the client on one server connection
# throughout; the rolled-back rows must not appear, the committed ones must.
seq 2000001 2001000 | sed 's/$/\tin a transaction/' > "$TEST_DIR/tx.tsv"
mesh_psql "$TOK" -c BEGIN -c "COPY core.copy_rows (n, note) FROM STDIN" -c ROLLBACK < "$TEST_DIR/tx.tsv"
assert_eq 0 "$(pg_psql -c "SELECT count(*) FROM core.copy_rows WHERE n > $ROWS")" "rows of the rolled-back COPY"
mesh_psql "$TOK" -c BEGIN -c "COPY core.copy_rows (n, note) FROM STDIN" -c COMMIT < "$TEST_DIR/tx.tsv"
assert_eq "1000|1000" "$(pg_psql -c "SELECT count(*), count(*) FILTER (WHERE tenant = 'DE') FROM core.copy_rows WHERE n > $ROWS")" \
    "rows of the committed COPY, stamped DE"
mesh_psql "$TOK" -c "DELETE FROM core.copy_rows WHERE n > $ROWS"

echo "== COPY TO STDOUT, $ROWS rows, text and binary"
sql="COPY (SELECT n, note FROM core.copy_rows ORDER BY n) TO STDOUT"
mesh_psql "$TOK" -c "$sql" > "$TEST_DIR/out_mesh.tsv"
pg_psql -c "$sql" > "$TEST_DIR/out_pg.tsv"
assert_eq "$ROWS" "$(wc -l < "$TEST_DIR/out_mesh.tsv")" "lines of COPY TO STDOUT through pgmesh"
assert_eq "$want_md5" "$(md5sum < "$TEST_DIR/out_pg.tsv" | cut -d' ' -f1)" "md5 of COPY TO STDOUT straight from PostgreSQL"
assert_eq "$want_md5" "$(md5sum < "$TEST_DIR/out_mesh.tsv" | cut -d' ' -f1)" "md5 of COPY TO STDOUT through pgmesh"
# The same over TLS between psql and pgmesh: records now span TLS frames.
mesh_psql "$TOK" -d "dbname=media_analytics sslmode=require" -c "$sql" > "$TEST_DIR/out_mesh_tls.tsv"
assert_eq "$want_md5" "$(md5sum < "$TEST_DIR/out_mesh_tls.tsv" | cut -d' ' -f1)" "md5 of COPY TO STDOUT through pgmesh over TLS"
mesh_psql "$TOK" -c "$sql (FORMAT binary)" > "$TEST_DIR/out_mesh.bin"
pg_psql -c "$sql (FORMAT binary)" > "$TEST_DIR/out_pg.bin"
cmp "$TEST_DIR/out_pg.bin" "$TEST_DIR/out_mesh.bin" || fail "binary COPY TO STDOUT through pgmesh differs from straight from PostgreSQL"
assert_mesh_hwm "COPY TO STDOUT of $ROWS rows, three times"
rm -f "$TEST_DIR"/rows.tsv "$TEST_DIR"/out_*

assert_eq "DE|regional_analyst" "$(mesh_psql "$TOK" -c "SELECT current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claim.role')")" \
    "claims after the COPYs"
mesh_stop
