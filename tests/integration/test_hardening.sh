#!/usr/bin/env bash
# sql/hardening.sql closes on the server what the guard cannot see: connected straight to
# PostgreSQL as marketing_domain_role, set_config, UPDATE pg_settings, temporary tables and
# functions, DO blocks and CREATE in public work before it and fail with 42501 after it; pgmesh
# still sets the claims (plain SET) and RLS still filters through it. The suite shares one
# database, so the hardening is reverted when the test ends, however it ends (hardening_lib.sh),
# and the privileges and role settings afterwards must equal those before.
. "$(dirname "$0")/lib.sh"
if [ -n "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: with the pgmesh extension the claims are superuser-only (test_extension_sql covers it)"
    exit 77
fi

. "$(dirname "$0")/hardening_lib.sh"
READER=$HARDENING_READER
DATABASE=$HARDENING_DATABASE

hardening_begin
before=$HARDENING_BEFORE
assert_contains "$before" "function|pg_catalog.set_config(text,text,boolean)|-|EXECUTE" \
    "PUBLIC may call set_config before the hardening"
assert_contains "$before" "database|$DATABASE|$READER|TEMPORARY" "the sample mesh grants the reader TEMPORARY"

# Before: each of these works as the reader, so the checks after the hardening mean something.
assert_eq "FR" "$(reader_psql -c "SELECT set_config('request.jwt.claim.tenant', 'FR', false)")" \
    "set_config before"
reader_psql -c "CREATE TEMP TABLE t_before (a int)" -c "DO \$\$ BEGIN PERFORM 1; END \$\$"

hardening_apply
hardening_apply # again: no-op
if out=$(hardening_apply -v database=postgres 2>&1); then
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

# Revert now (the exit handler would too) and check the state equals the one before.
hardening_reverted
reader_psql -c "CREATE TEMP TABLE t_reverted (a int)" -c "DO \$\$ BEGIN PERFORM 1; END \$\$" \
    -c "SELECT set_config('search_path', 'core', false)" > /dev/null
