#!/usr/bin/env bash
# Session pooling: a client's DISCARD ALL or RESET ALL takes pgmesh's claims and the role's limits
# along, however it is sent; pgmesh sets them again before the client's next statement. psycopg 3
# sends each through the extended protocol (prepare=True: a named statement, Parse in one batch and
# Bind/Execute in the next; binary=True: the unnamed one), as its libpq trace shows; after each,
# the audit role's statement_timeout (5min) and the token's claims are in force again.
. "$(dirname "$0")/lib.sh"

PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"
mesh_config
ini_set pgmesh pool_mode session
ini_set pgmesh default_pool_size 1
mesh_start
audit=$(mint HQ global_corporate_audit)

cat > "$TEST_DIR/reset.py" <<'PY'
import re
import sys

import psycopg
from psycopg import pq

dsn, trace_path = sys.argv[1], sys.argv[2]
show = "SELECT current_setting('statement_timeout') || ' ' || current_setting('request.jwt.claim.tenant', true)"
# Another spelling per way: psycopg keys its prepared statements by text, and DISCARD ALL drops
# them on the server.
steps = (("DISCARD ALL", "prepared"), ("reset all", "binary"), ("discard all", "binary"), ("RESET ALL", "prepared"))
with psycopg.connect(dsn, autocommit=True) as conn, open(trace_path, "w") as trace:
    print("start", conn.execute(show).fetchone()[0])
    conn.pgconn.trace(trace.fileno())
    conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
    for sql, how in steps:
        label = f"{sql.upper()} {how}"
        conn.execute(sql, prepare=True) if how == "prepared" else conn.execute(sql, binary=True)
        print(f"{label}:", conn.execute(show).fetchone()[0])
    conn.pgconn.untrace()
with open(trace_path) as f:
    parses = [line for line in f if "\tParse\t" in line]
for sql in ("DISCARD ALL", "RESET ALL"):
    named = re.compile(r'"[^"]+" "' + sql + '"', re.I)
    unnamed = re.compile(r'"" "' + sql + '"', re.I)
    print(f"{sql}: named Parse", any(named.search(p) for p in parses))
    print(f"{sql}: unnamed Parse", any(unnamed.search(p) for p in parses))
PY
out=$(timeout -k 5 60 "$PYTHON" "$TEST_DIR/reset.py" "$(mesh_dsn "$audit")" "$TEST_DIR/trace.txt" 2>&1) \
    || { printf '%s\n' "$out"; fail "psycopg DISCARD ALL / RESET ALL"; }
printf '%s\n' "$out"
assert_contains "$out" "start 5min HQ" "before any reset"
resets=("DISCARD ALL" "RESET ALL")
for sql in "${resets[@]}"; do
    for how in prepared binary; do
        assert_contains "$out" "$sql $how: 5min HQ" "$sql ($how)"
    done
    # The extended protocol was really used, both ways.
    assert_contains "$out" "$sql: named Parse True" "$sql through a named statement"
    assert_contains "$out" "$sql: unnamed Parse True" "$sql through the unnamed statement"
done

# The simple-query forms too, each in the next session on the same server connection.
show="SELECT current_setting('statement_timeout') || ' ' || current_setting('request.jwt.claim.tenant')"
for sql in "${resets[@]}"; do
    assert_eq "5min HQ" "$(mesh_psql "$audit" -c "$sql" -c "$show")" "$sql in a simple Query"
done
mesh_stop
