#!/usr/bin/env bash
# With the extension, a client's own top-level SET of a limit at or below its role's value works
# through pgmesh (applications lower statement_timeout for one job), PostgreSQL refuses one above
# it (or 0, no limit) with 42501, and the change never reaches another client: through a pool of
# one, the next client on the same server connection finds the role's values, in both pool modes,
# simple and extended protocol. Without the extension the guard refuses every such SET (the server
# could not hold the ceiling): test_guard.sh.
. "$(dirname "$0")/lib.sh"
if [ -z "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: needs the pgmesh extension in the suite's cluster (make integration-ext)"
    exit 77
fi
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"

mesh_config
ini_set pgmesh default_pool_size 1
de=$(mint DE regional_analyst)
LIMITS_SQL="SELECT current_setting('statement_timeout') || '|' || current_setting('work_mem')"

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    out=$(mesh_psql "$de" -c "SET statement_timeout = '5s'" -c "SET work_mem = '64MB'" -c "$LIMITS_SQL" \
        -c "BEGIN" -c "SET LOCAL work_mem = '1MB'" -c "SHOW work_mem" -c "COMMIT" 2>&1) || fail "$mode: lowering limits at the top level failed: $out"
    # In transaction pooling each transaction starts with the role's values again (the client's
    # SET lasts its own transaction on that connection); in session pooling it lasts the session.
    if [ "$mode" = session ]; then
        assert_contains "$out" "5s|64MB" "$mode: SET below the ceiling"
    else
        assert_contains "$out" "30s|128MB" "$mode: the next transaction starts with the role's values"
    fi
    assert_contains "$out" $'\n1MB' "$mode: SET LOCAL below the ceiling"
    # The plain spellings above the ceiling are clamped by pgmesh (test_limits_clamp.sh); these
    # reach PostgreSQL as written, which refuses them.
    for above in "SET statement_timeout = E'0'" "SET \"statement_timeout\" = '10min'" "SET work_mem = E'1GB'" \
        "SET LOCAL work_mem = E'1GB'" "RESET \"statement_timeout\""; do
        # Inside a block (which the error aborts), then the state after the client's ROLLBACK.
        out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "BEGIN" -c "$above" -c "ROLLBACK" \
            -c "$LIMITS_SQL" 2>&1) || true
        assert_contains "$out" "42501" "$mode: $above in a block"
        assert_contains "$out" "30s|128MB" "$mode: after $above in a block"
        [[ $above == "SET LOCAL"* ]] && continue
        out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose -c "$above" -c "$LIMITS_SQL" 2>&1) || true
        assert_contains "$out" "42501" "$mode: $above"
        assert_contains "$out" "30s|128MB" "$mode: after $above"
    done
    # The next client on the one server connection, after a client lowered its limits and left.
    mesh_psql "$de" -c "SET statement_timeout = '2s'" -c "SET work_mem = '1MB'" > /dev/null ||
        fail "$mode: lowering limits failed"
    assert_eq "30s|128MB" "$(mesh_psql "$de" -c "$LIMITS_SQL")" "$mode: the next client's limits"
    MESH_DSN=$(mesh_dsn "$de") LIMITS_SQL=$LIMITS_SQL MODE=$mode "$PYTHON" - <<'PY' || fail "$mode: extended protocol"
import os, sys
import psycopg
from psycopg import errors

ok = True
with psycopg.connect(os.environ["MESH_DSN"], autocommit=True) as conn:
    conn.execute("SET statement_timeout = '4s'")
    got = conn.execute(os.environ["LIMITS_SQL"]).fetchone()[0]
    want = "4s|128MB" if os.environ["MODE"] == "session" else "30s|128MB"
    if got != want:
        print(f"FAIL after SET statement_timeout = '4s': {got}, want {want}")
        ok = False
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = '3s'")
        got = conn.execute("SHOW statement_timeout").fetchone()[0]
        if got != "3s":
            print(f"FAIL SET LOCAL in a transaction: {got}")
            ok = False
    for above in ("SET statement_timeout = E'0'", "SET work_mem = E'2GB'"):
        try:
            conn.execute(above)
            print(f"FAIL {above}: accepted")
            ok = False
        except errors.InsufficientPrivilege:
            pass
with psycopg.connect(os.environ["MESH_DSN"], autocommit=True) as conn:
    got = conn.execute(os.environ["LIMITS_SQL"]).fetchone()[0]
    if got != "30s|128MB":
        print(f"FAIL the next client's limits: {got}")
        ok = False
sys.exit(0 if ok else 1)
PY
    mesh_stop
done
echo "ok: limits lowered at the top level in both pool modes and protocols; raised or lifted refused with 42501; the next client has the role's"
