#!/usr/bin/env bash
# sql/hardening.sql closes on the server what the guard cannot see: connected straight to
# PostgreSQL as marketing_domain_role, set_config, UPDATE pg_settings, temporary tables and
# functions, DO blocks and CREATE in public work before it and fail with 42501 after it; pgmesh
# still sets the claims (plain SET) and RLS still filters through it. The suite shares one
# database, so the hardening is reverted when the test ends, however it ends (EXIT trap), and the
# privileges and role settings afterwards must equal those before.
. "$(dirname "$0")/lib.sh"
if [ -n "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: with the pgmesh extension the claims are superuser-only (test_extension_sql covers it)"
    exit 77
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
READER=marketing_domain_role
DATABASE=media_analytics

reader_psql() {
    PGPASSFILE=$PG_PASSFILE timeout -k 5 "$LIB_CMD_TIMEOUT_S" psql -X -A -t -q -w \
        -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
        "host=127.0.0.1 port=$PG_PORT user=$READER dbname=$DATABASE" "$@"
}

# reader_fails SQL NEEDLE WHAT: the statement fails with 42501 and NEEDLE in the message.
reader_fails() {
    local out
    if out=$(reader_psql -c "$1" 2>&1); then
        fail "$3: succeeded as $READER: $out"
    fi
    assert_contains "$out" "42501" "$3 (SQLSTATE)"
    assert_contains "$out" "$2" "$3"
}

# Everything the hardening touches, as (object, grantee, privilege) with defaults made explicit
# (a REVOKE then GRANT leaves an explicit ACL equal to the implicit one), plus the reader's
# settings and attributes. Grantee "-" is PUBLIC.
snapshot() {
    pg_psql -F '|' -c "
        SELECT 'function', a.grantee::regrole::text, a.privilege_type
          FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
         WHERE p.oid = 'pg_catalog.set_config(text,text,boolean)'::regprocedure
        UNION ALL
        SELECT 'language', a.grantee::regrole::text, a.privilege_type
          FROM pg_language l, aclexplode(coalesce(l.lanacl, acldefault('l', l.lanowner))) a
         WHERE l.lanname = 'plpgsql'
        UNION ALL
        SELECT 'database', a.grantee::regrole::text, a.privilege_type
          FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
         WHERE d.datname = current_database()
        UNION ALL
        SELECT 'schema', a.grantee::regrole::text, a.privilege_type
          FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
         WHERE n.nspname = 'public'
        UNION ALL
        SELECT 'setting', coalesce(d.datname, '*'), c
          FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase,
               unnest(s.setconfig) c
         WHERE s.setrole = '$READER'::regrole
        UNION ALL
        SELECT 'attributes', rolname, concat_ws(',', rolsuper, rolcreatedb, rolcreaterole,
               rolreplication, rolbypassrls)
          FROM pg_roles WHERE rolname = '$READER'
        ORDER BY 1, 2, 3"
}

# Grants back every privilege of the "before" snapshot that is missing now and removes the two
# role settings; the hardening only revokes and sets those two, so this restores the state
# before it. Idempotent, so it is safe whether the hardening ran fully, not at all or twice.
revert_hardening() {
    local now line obj grantee priv target to sql=""
    now=$(snapshot) || return 1
    while IFS='|' read -r obj grantee priv; do
        [ -n "$obj" ] || continue
        grep -qxF "$obj|$grantee|$priv" <<< "$now" && continue
        case $obj in
            function) target='FUNCTION pg_catalog.set_config(text, text, boolean)' ;;
            language) target='LANGUAGE plpgsql' ;;
            database) target="DATABASE \"$DATABASE\"" ;;
            schema) target='SCHEMA public' ;;
            *) continue ;;
        esac
        if [ "$grantee" = "-" ]; then to=PUBLIC; else to="\"$grantee\""; fi
        sql+="GRANT $priv ON $target TO $to;"$'\n'
    done <<< "$before"
    sql+="ALTER ROLE \"$READER\" RESET standard_conforming_strings;"$'\n'
    sql+="ALTER ROLE \"$READER\" RESET row_security;"$'\n'
    pg_psql -c "BEGIN;"$'\n'"$sql"$'\n'"COMMIT;" > /dev/null
}

before=$(snapshot)
assert_contains "$before" "function|-|EXECUTE" "PUBLIC may call set_config before the hardening"
assert_contains "$before" "database|$READER|TEMPORARY" "the sample mesh grants the reader TEMPORARY"

# Before: each of these works as the reader, so the checks after the hardening mean something.
assert_eq "FR" "$(reader_psql -c "SELECT set_config('request.jwt.claim.tenant', 'FR', false)")" \
    "set_config before"
reader_psql -c "CREATE TEMP TABLE t_before (a int)" -c "DO \$\$ BEGIN PERFORM 1; END \$\$"

reverted=0
_hardening_exit() {
    local st=$?
    if [ "$reverted" = 0 ]; then
        revert_hardening || { echo "FAIL: could not revert sql/hardening.sql" >&2; st=1; }
    fi
    (exit "$st")
    _lib_cleanup
}
trap _hardening_exit EXIT

pg_psql -v reader_role="$READER" -v database="$DATABASE" -f "$ROOT/sql/hardening.sql"
pg_psql -v reader_role="$READER" -v database="$DATABASE" -f "$ROOT/sql/hardening.sql" # again: no-op
if out=$(pg_psql -v reader_role="$READER" -v database=postgres -f "$ROOT/sql/hardening.sql" 2>&1); then
    fail "hardening.sql ran while connected to another database than -v database"
fi
assert_contains "$out" "connect to the database named by -v database" "wrong database"

# After: straight to PostgreSQL as the reader, nothing that sets a claim or runs SQL we cannot see.
reader_fails "SELECT set_config('request.jwt.claim.tenant', 'FR', false)" \
    "permission denied for function set_config" "set_config"
reader_fails "SELECT pg_catalog.set_config('search_path', 'core', true)" \
    "permission denied for function set_config" "set_config of a harmless setting (database-wide)"
reader_fails "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'" \
    "permission denied for function set_config" "UPDATE pg_settings"
reader_fails "CREATE TEMP TABLE t_after (a int)" \
    "permission denied to create temporary tables in database \"$DATABASE\"" "temporary table"
reader_fails "CREATE FUNCTION pg_temp.f() RETURNS text LANGUAGE sql SET request.jwt.claim.tenant = 'FR' AS 'SELECT 1::text'" \
    "permission denied" "function in pg_temp"
reader_fails "DO \$\$ BEGIN EXECUTE 'SET request.jwt.claim.tenant = ''FR'''; END \$\$" \
    "permission denied for language plpgsql" "DO block"
reader_fails "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'" \
    "permission denied for schema public" "CREATE in public"
assert_eq "on|on" "$(reader_psql -c "SELECT current_setting('standard_conforming_strings') || '|' || current_setting('row_security')")" \
    "role defaults"
assert_eq "false|false" "$(reader_psql -c "SELECT r.rolsuper || '|' || r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user")" \
    "reader attributes"
# The revoke from PUBLIC is database-wide: another role without its own grant loses it too.
out=$(pg_psql -c "SELECT has_function_privilege('audit_role', 'pg_catalog.set_config(text,text,boolean)', 'EXECUTE')")
assert_eq "f" "$out" "audit_role and set_config"
# What the hardening cannot close: SET of a placeholder needs no privilege. That is the guard's part.
assert_eq "FR" "$(reader_psql -c "SET request.jwt.claim.tenant = 'FR'" -c "SHOW request.jwt.claim.tenant")" \
    "plain SET still works directly (pgmesh refuses it from clients)"

# Through pgmesh: its own SET statements still apply the claims, RLS still filters, and set_config
# fails (refused by pgmesh's guard or by the server, whichever comes first).
mesh_config
mesh_start
de=$(mint DE regional_analyst)
q="SELECT current_setting('request.jwt.claim.tenant', true) || ':' || (SELECT string_agg(DISTINCT country_code, ',') FROM core.fct_playback_sessions)"
assert_eq "DE:DE" "$(mesh_psql "$de" -c "$q")" "claims and RLS through pgmesh with the hardening"
if out=$(mesh_psql "$de" -c "SELECT set_config('request.jwt.claim.tenant', 'FR', false)" -c "$q" 2>&1); then
    fail "set_config through pgmesh succeeded: $out"
fi
assert_not_contains "$out" "FR" "no FR claim through pgmesh"
assert_eq "DE:DE" "$(mesh_psql "$de" -c "$q")" "DE after the refused set_config"
mesh_stop

# Revert now (the trap would too) and check the state equals the one before.
revert_hardening
reverted=1
assert_eq "$before" "$(snapshot)" "privileges and settings after the revert"
reader_psql -c "CREATE TEMP TABLE t_reverted (a int)" -c "DO \$\$ BEGIN PERFORM 1; END \$\$" \
    -c "SELECT set_config('search_path', 'core', false)" > /dev/null
