#!/usr/bin/env bash
# Settings a reader changes inside a function body, where pgmesh's guard cannot read them, never
# reach the next client of the pooled server connection, and never let the reader hide SQL from
# the guard. Through a pool of one, in both pool modes, with the extension (whose report tells
# pgmesh that a transaction changed session settings; PostgreSQL 15 does not report search_path):
# - search_path trojan: DE's function runs SET search_path = marketing, pg_catalog; the next
#   client (FR) must run with the default search_path, so its count(*) is PostgreSQL's and not
#   DE's aggregate of the same name, which would copy FR's rows into a table DE reads;
# - client_encoding: DE's function sets SJIS, in which 0x95 0x5C is one character while the guard
#   would read the 0x5C as a backslash: pgmesh ends that client (42501) before its next statement,
#   and the next DE client has UTF8 and DE's limits.
# Neither the report nor any pgmesh.* setting reaches clients.
. "$(dirname "$0")/lib.sh"
if [ -z "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: needs the pgmesh extension in the suite's cluster (make integration-ext)"
    exit 77
fi
PYTHON=${PYTHON:-/usr/bin/python3}
cleanup_sql='DROP AGGREGATE IF EXISTS marketing.count(*); DROP FUNCTION IF EXISTS marketing.steal(int8), marketing.set_path(), marketing.enc(); DROP TABLE IF EXISTS marketing.loot'
lib_at_exit "pg_psql -c \"$cleanup_sql\""
pg_psql -c "$cleanup_sql" > /dev/null 2>&1

mesh_config
ini_set pgmesh default_pool_size 1
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
default_path=$(pg_psql -c "SHOW search_path")
fr_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = 'FR'")

mesh_start
mesh_psql "$de" -v ON_ERROR_STOP=1 > /dev/null <<'SQL' || fail "the reader could not create its objects"
CREATE TABLE marketing.loot (session_id bigint, country_code text, tenant text);
CREATE FUNCTION marketing.steal(int8) RETURNS int8 LANGUAGE sql AS $$
    INSERT INTO marketing.loot SELECT session_id, country_code, current_setting('request.jwt.claim.tenant')
      FROM core.fct_playback_sessions;
    SELECT $1 + 1 $$;
CREATE AGGREGATE marketing.count(*) (SFUNC = marketing.steal, STYPE = int8, INITCOND = '0');
CREATE FUNCTION marketing.set_path() RETURNS text LANGUAGE sql
    AS $$ SET search_path = marketing, pg_catalog; SELECT current_setting('search_path') $$;
CREATE FUNCTION marketing.enc() RETURNS int LANGUAGE sql AS $$ SET client_encoding = 'SJIS'; SELECT 1 $$;
SQL
mesh_stop

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    for attack in "SELECT marketing.set_path()" "BEGIN; SELECT marketing.set_path(); COMMIT"; do
        mesh_psql "$de" -c "$attack" > /dev/null || fail "$mode: $attack failed"
        out=$(mesh_psql "$fr" -c "SELECT current_setting('search_path') || '|' || current_setting('request.jwt.claim.tenant') || '|' || count(*) FROM core.fct_playback_sessions")
        assert_eq "$default_path|FR|$fr_rows" "$out" "$mode: the next client after $attack"
    done
    stolen=$(pg_psql -c "SELECT count(*) FROM marketing.loot")
    assert_eq 0 "$stolen" "$mode: rows the reader's aggregate copied from other clients"

    MESH_PORT=$MESH_PORT TOKEN_DE=$de MODE=$mode "$PYTHON" - <<'PY' || fail "$mode: client_encoding"
import os, sys
sys.path.insert(0, os.path.join(os.environ["ROOT"] if "ROOT" in os.environ else os.getcwd(), "tests/integration"))
from attack_wire import Raw

mode, ok = os.environ["MODE"], True
port, token = int(os.environ["MESH_PORT"]), os.environ["TOKEN_DE"]
c = Raw("analyst", "media_analytics", token, port=port)
r = c.query("SELECT marketing.enc()")
if r.sqlstate() != "42501" or "client_encoding" not in r.error.get("M", ""):
    print(f"FAIL {mode}: SET client_encoding = 'SJIS' in a function: {r.describe()}")
    ok = False
# Whatever the answer, the hiding statement must not run on that connection.
if not r.closed:
    c.send(b"Q", b"SELECT E'\x95\\'; SET work_mem = '64kB'; SET statement_timeout = '1ms'; SELECT 'x' --'\0")
    r2 = c.until_ready()
    print(f"FAIL {mode}: the connection stayed open after SJIS: {r2.describe()}")
    ok = False
c.close()
c = Raw("analyst", "media_analytics", token, port=port)
c.send(b"Q", b"SELECT current_setting('client_encoding') || '|' || current_setting('work_mem') || '|' || current_setting('statement_timeout')\0")
seen = []
while True:
    t, b = c.read()
    if t is None or t == b"Z":
        break
    if t == b"S":
        seen.append(b.split(b"\0")[0].decode())
    if t == b"D":
        row = b[6:].decode()
        if row != "UTF8|128MB|30s":
            print(f"FAIL {mode}: the next DE client has {row}, want UTF8|128MB|30s")
            ok = False
if any(n.startswith("pgmesh.") for n in seen):
    print(f"FAIL {mode}: ParameterStatus reached the client: {seen}")
    ok = False
c.close()
sys.exit(0 if ok else 1)
PY
    mesh_stop
done
echo "ok: search_path and client_encoding set in function bodies reach no other client, in both pool modes"
