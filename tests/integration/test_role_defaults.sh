#!/usr/bin/env bash
# A reader may change its own role's defaults (ALTER ROLE ... SET needs no privilege for oneself),
# from inside a function where the guard cannot read it. The two a guard bypass would need,
# standard_conforming_strings off and a client_encoding whose characters may hold a backslash
# byte, must not reach pgmesh's new server connections: pgmesh asks for UTF8 and
# standard_conforming_strings = on when it connects, and refuses a session that still differs.
. "$(dirname "$0")/lib.sh"
lib_at_exit 'pg_psql -c "ALTER ROLE marketing_domain_role RESET standard_conforming_strings" -c "ALTER ROLE marketing_domain_role RESET client_encoding" -c "DROP FUNCTION IF EXISTS marketing.defaults()"'

mesh_config
mesh_start
de=$(mint DE regional_analyst)
mesh_psql "$de" -c "CREATE FUNCTION marketing.defaults() RETURNS int LANGUAGE sql AS \$\$ ALTER ROLE marketing_domain_role SET standard_conforming_strings = off; ALTER ROLE marketing_domain_role SET client_encoding = 'SJIS'; SELECT 1 \$\$" \
    -c "SELECT marketing.defaults()" > /dev/null || fail "the reader could not change its role's defaults"
assert_contains "$(pg_psql -c "SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE rolname = 'marketing_domain_role'")" \
    "client_encoding=SJIS" "the role's defaults after the reader's function"
mesh_stop
mesh_start # new server connections, which start with the role's defaults
out=$(mesh_psql "$de" -c "SELECT current_setting('standard_conforming_strings') || '|' || current_setting('client_encoding') || '|' || current_setting('request.jwt.claim.tenant')")
assert_eq "on|UTF8|DE" "$out" "a new server connection's settings"
out=$(mesh_psql "$de" -v ON_ERROR_STOP=0 -c "SELECT E'\x95\\\\'; SET request.jwt.claim.tenant = 'FR'; SELECT 'x' --'" -c "SELECT current_setting('request.jwt.claim.tenant')" 2>&1) || true
assert_contains "$out" "DE" "the claim after a statement that would hide in SJIS"
assert_not_contains "$out" "FR" "the claim after a statement that would hide in SJIS"
mesh_stop
echo "ok: role defaults of standard_conforming_strings off and client_encoding SJIS do not reach pgmesh's server connections"
