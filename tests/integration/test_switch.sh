#!/usr/bin/env bash
# Tenant switch hygiene (issue 11 item 1): when the one server connection passes from a DE client
# to an FR client, nothing of the DE client's session reaches the FR client, even where pgmesh's
# lexer could not see it: a named statement executed again after a DISCARD ALL (search_path, a
# WITH HOLD cursor), an advisory lock, lastval(), LISTEN inside a function (a NOTIFY in the FR
# client's transaction, and one while the server waits idle in its pool, which must not cost the
# connection), DEALLOCATE ALL inside a function (pgmesh's shared statements are prepared again,
# not left failing). A named statement that changes the session marks the connection for
# DISCARD ALL whenever it is executed, also between two DE clients. switch.py runs each case;
# both clients check by pg_backend_pid() that they shared the server connection.
. "$(dirname "$0")/lib.sh"

PYTHON=/usr/bin/python3
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"

# Made by the superuser, so that creating them is no part of what pgmesh sees.
lib_at_exit "pg_psql -c 'DROP FUNCTION IF EXISTS marketing.sw_listen(), marketing.sw_dealloc(); DROP SEQUENCE IF EXISTS marketing.sw_seq' >/dev/null 2>&1"
pg_psql <<'SQL'
CREATE SEQUENCE marketing.sw_seq;
GRANT USAGE, SELECT ON SEQUENCE marketing.sw_seq TO marketing_domain_role;
CREATE FUNCTION marketing.sw_listen() RETURNS void LANGUAGE sql AS 'LISTEN sw_chan';
CREATE FUNCTION marketing.sw_dealloc() RETURNS void LANGUAGE sql AS 'DEALLOCATE ALL';
SQL

mesh_config
ini_set pgmesh default_pool_size 1
mesh_start
DSN_DE=$(mesh_dsn "$(mint DE regional_analyst)")
DSN_FR=$(mesh_dsn "$(mint FR regional_analyst)")
DSN_DIRECT="host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=media_analytics"
export DSN_DE DSN_FR DSN_DIRECT

# Each case twice: on a connection without shared statements (the switch runs DISCARD ALL) and
# with one (pgmesh's own reset, which keeps them).
failed=()
for shared in 0 1; do
    for case in named_setting named_setting_same named_cursor advisory sequence listen listen_idle dealloc; do
        SW_SHARED=$shared timeout -k 5 60 "$PYTHON" "$(dirname "$0")/switch.py" "$case" || failed+=("$case/$shared")
        kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh died during $case"
    done
done
[ ${#failed[@]} -eq 0 ] || fail "switch cases failed: ${failed[*]}"
mesh_stop

# With the extension, the switches above went through pgmesh.switch; a server whose extension is
# still 1.0 (no switch) must get the scrub and an authenticated clear instead, with the same
# result. Then the 1.1 objects are put back for the rest of the suite.
if [ -n "${SERVER_KEY_FILE:-}" ]; then
    lib_at_exit "pg_psql -c 'DROP EXTENSION IF EXISTS pgmesh' -c 'CREATE EXTENSION pgmesh' >/dev/null 2>&1"
    pg_psql -c "DROP EXTENSION pgmesh" -c "CREATE EXTENSION pgmesh VERSION '1.0'" > /dev/null
    [ "$(pg_psql -c "SELECT to_regprocedure('pgmesh.switch(bigint, text[], text)') IS NULL")" = t ] ||
        fail "extension 1.0 has pgmesh.switch"
    mesh_start
    for case in named_setting advisory sequence listen; do
        SW_SHARED=0 timeout -k 5 60 "$PYTHON" "$(dirname "$0")/switch.py" "$case" || failed+=("$case/1.0")
    done
    mesh_stop
    [ ${#failed[@]} -eq 0 ] || fail "switch cases with extension 1.0 failed: ${failed[*]}"
    pg_psql -c "DROP EXTENSION pgmesh" -c "CREATE EXTENSION pgmesh" > /dev/null
    [ "$(pg_psql -c "SELECT extversion FROM pg_extension WHERE extname = 'pgmesh'")" = 1.1 ] ||
        fail "the extension is not back at 1.1"
    echo "ok: the same switches through a server whose extension is 1.0 (no pgmesh.switch)"
fi
