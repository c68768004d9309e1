#!/usr/bin/env bash
# The attacks of issue 10 through pgmesh, with the pgmesh extension in the server (the suite's
# run with PGMESH_EXTENSION=1): a tenant-DE reader whose server role owns the marketing schema
# (demo/mesh.sql) writes SQL functions that SET the tenant or role claim, call set_config, or
# lift statement_timeout and work_mem, and calls them through pgmesh, in simple (psql) and
# extended (psycopg 3) protocol, inside explicit transactions, in both pool modes, through a pool
# of one so every attempt lands on the server connection the next statement uses. Each call fails
# with PostgreSQL's own 42501, and afterwards the claims are still DE and regional_analyst, the
# reader sees exactly DE's rows, and the role's limits are in force.
. "$(dirname "$0")/lib.sh"
if [ -z "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: needs the pgmesh extension in the suite's cluster (make integration-ext)"
    exit 77
fi
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"

lib_at_exit 'pg_psql -c "DROP FUNCTION IF EXISTS marketing.f_tenant(), marketing.f_role(), marketing.f_cfg(), marketing.f_limits()"'

de_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = 'DE'")
[ "$de_rows" -gt 0 ] || fail "the sample mesh has no DE rows"
all_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions")

mesh_config
ini_set pgmesh default_pool_size 1
de=$(mint DE regional_analyst)

# What the reader sees after an attack: claims, visible rows, limits.
STATE_SQL="SELECT current_setting('request.jwt.claim.tenant') || '|' || current_setting('request.jwt.claim.role') || '|' || (SELECT count(*) FROM core.fct_playback_sessions) || '|' || current_setting('statement_timeout') || '|' || current_setting('work_mem')"
WANT="DE|regional_analyst|$de_rows|30s|128MB"

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    mesh_psql "$de" -c "CREATE OR REPLACE FUNCTION marketing.f_tenant() RETURNS text LANGUAGE sql AS \$\$ SET request.jwt.claim.tenant = 'FR'; SELECT 'x' \$\$" \
        -c "CREATE OR REPLACE FUNCTION marketing.f_role() RETURNS text LANGUAGE sql AS \$\$ SET request.jwt.claim.role = 'global_corporate_audit'; SELECT 'x' \$\$" \
        -c "CREATE OR REPLACE FUNCTION marketing.f_cfg() RETURNS text LANGUAGE sql AS \$\$ SELECT set_config('request.jwt.claim.tenant', 'FR', false) \$\$" \
        -c "CREATE OR REPLACE FUNCTION marketing.f_limits() RETURNS text LANGUAGE sql AS \$\$ SET statement_timeout = 0; SET work_mem = '4GB'; SELECT 'x' \$\$" \
        || fail "$mode: the reader could not create its functions"
    for f in f_tenant f_role f_cfg f_limits; do
        out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose \
            -c "BEGIN; SELECT marketing.$f(); SELECT count(*) FROM core.fct_playback_sessions; COMMIT" 2>&1) || true
        assert_contains "$out" "42501" "$mode, simple protocol, marketing.$f()"
        assert_eq "$WANT" "$(mesh_psql "$de" -c "$STATE_SQL")" "$mode, simple protocol, after marketing.$f()"
    done
    # Extended protocol: psycopg 3 binds every statement (Parse/Bind/Execute), one connection for
    # the attack and the check, in a transaction and in autocommit.
    MESH_DSN=$(mesh_dsn "$de") STATE_SQL=$STATE_SQL WANT=$WANT "$PYTHON" - <<'PY' || fail "$mode: extended protocol"
import os, sys
import psycopg
from psycopg import errors

ok = True
with psycopg.connect(os.environ["MESH_DSN"]) as conn:
    for f in ("f_tenant", "f_role", "f_cfg", "f_limits"):
        for autocommit in (False, True):
            conn.autocommit = autocommit
            try:
                conn.execute(f"SELECT marketing.{f}()")
                print(f"FAIL {f} (autocommit={autocommit}): the call succeeded")
                ok = False
            except errors.InsufficientPrivilege:
                pass
            if not autocommit:
                conn.rollback()
            got = conn.execute(os.environ["STATE_SQL"]).fetchone()[0]
            if not autocommit:
                conn.rollback()
            if got != os.environ["WANT"]:
                print(f"FAIL {f} (autocommit={autocommit}): state {got}, want {os.environ['WANT']}")
                ok = False
print("extended protocol: ok" if ok else "extended protocol: FAILED")
sys.exit(0 if ok else 1)
PY
    mesh_stop
done
[ "$de_rows" -lt "$all_rows" ] || fail "DE sees every row: the check above would not notice a wrong tenant"
echo "ok: 4 attacks x (simple + extended x 2) x 2 pool modes refused; claims DE, $de_rows of $all_rows rows, limits 30s/128MB"
