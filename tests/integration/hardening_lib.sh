# Shared by the tests that apply sql/hardening.sql to the suite's cluster (test_hardening.sh,
# test_shared_role.sh), sourced after lib.sh. The suite's tests share one database, so a test that
# hardens it puts every privilege and role setting back however it ends, and checks that it did.
#
#   HARDENING_READER, HARDENING_DATABASE   the reader role and the database the script is run for
#   hardening_snapshot      every privilege on what the script revokes, one "kind|object|grantee|
#                           privilege" line each, defaults made explicit (a REVOKE then GRANT leaves an
#                           explicit ACL equal to the implicit one; grantee "-" is PUBLIC), then the
#                           reader's role settings and attributes
#   hardening_begin         takes the snapshot into HARDENING_BEFORE and registers hardening_revert to
#                           run when the test ends (lib_at_exit); call it before the first apply
#   hardening_apply [ARGS]  runs sql/hardening.sql as superuser for the reader and database (ARGS go
#                           to psql before -f, e.g. -v database=postgres to try another database)
#   hardening_revert        grants back what HARDENING_BEFORE has and the cluster now lacks, resets the
#                           two role settings the script sets; idempotent. On failure it also writes
#                           $TEST_DIR/hardening-revert.log, which run.sh shows
#   hardening_reverted      reverts, then fails unless the snapshot equals HARDENING_BEFORE
#   reader_psql [ARGS...]   psql straight to PostgreSQL as the reader (password from PG_PASSFILE),
#                           -X -A -t -q -w, ON_ERROR_STOP, VERBOSITY verbose (SQLSTATEs in messages)
#   reader_fails SQL NEEDLE WHAT   the statement fails as the reader with 42501 and NEEDLE

HARDENING_READER=marketing_domain_role
HARDENING_DATABASE=media_analytics
HARDENING_SQL=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/sql/hardening.sql
HARDENING_BEFORE=

# What sql/hardening.sql revokes privileges on, besides plpgsql, the database and schema public.
_hardening_functions=(
    'pg_catalog.set_config(text,text,boolean)'
    'pg_catalog.pg_stat_get_activity(integer)'
    'pg_catalog.pg_stat_get_backend_activity(integer)'
    'pg_catalog.pg_cancel_backend(integer)'
    'pg_catalog.pg_terminate_backend(integer,bigint)'
    'pg_catalog.pg_prepared_statement()'
)
_hardening_views=(pg_catalog.pg_stat_activity pg_catalog.pg_prepared_statements)

_hardening_in_list() { # CAST NAME... -> 'NAME'::CAST, ... (NULL for none)
    local cast=$1 out="" n
    shift
    for n in "$@"; do out+="${out:+, }'$n'::$cast"; done
    printf '%s' "${out:-NULL}"
}

hardening_snapshot() {
    pg_psql -F '|' -c "
        SELECT 'function', 'pg_catalog.' || p.oid::regprocedure::text, a.grantee::regrole::text,
               a.privilege_type
          FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
         WHERE p.oid IN ($(_hardening_in_list regprocedure "${_hardening_functions[@]}"))
        UNION ALL
        SELECT 'view', 'pg_catalog.' || c.relname, a.grantee::regrole::text, a.privilege_type
          FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
         WHERE c.oid IN ($(_hardening_in_list regclass "${_hardening_views[@]}"))
        UNION ALL
        SELECT 'language', l.lanname, a.grantee::regrole::text, a.privilege_type
          FROM pg_language l, aclexplode(coalesce(l.lanacl, acldefault('l', l.lanowner))) a
         WHERE l.lanname = 'plpgsql'
        UNION ALL
        SELECT 'database', d.datname, a.grantee::regrole::text, a.privilege_type
          FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
         WHERE d.datname = current_database()
        UNION ALL
        SELECT 'schema', n.nspname, a.grantee::regrole::text, a.privilege_type
          FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
         WHERE n.nspname = 'public'
        UNION ALL
        SELECT 'setting', coalesce(d.datname, '*'), '', c
          FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase,
               unnest(s.setconfig) c
         WHERE s.setrole = '$HARDENING_READER'::regrole
        UNION ALL
        SELECT 'attributes', rolname, '', concat_ws(',', rolsuper, rolcreatedb, rolcreaterole,
               rolreplication, rolbypassrls)
          FROM pg_roles WHERE rolname = '$HARDENING_READER'
        ORDER BY 1, 2, 3, 4"
}

hardening_begin() {
    HARDENING_BEFORE=$(hardening_snapshot)
    [ -n "$HARDENING_BEFORE" ] || fail "hardening_begin: empty snapshot"
    lib_at_exit hardening_revert
}

hardening_apply() {
    pg_psql -v reader_role="$HARDENING_READER" -v database="$HARDENING_DATABASE" "$@" -f "$HARDENING_SQL"
}

_hardening_revert() {
    local now obj name grantee priv target to sql=""
    now=$(hardening_snapshot) || return 1
    while IFS='|' read -r obj name grantee priv; do
        [ -n "$obj" ] || continue
        grep -qxF "$obj|$name|$grantee|$priv" <<< "$now" && continue
        case $obj in
            function) target="FUNCTION $name" ;;
            view) target="TABLE $name" ;;
            language) target="LANGUAGE $name" ;;
            database) target="DATABASE \"$name\"" ;;
            schema) target="SCHEMA $name" ;;
            *) continue ;;
        esac
        if [ "$grantee" = "-" ]; then to=PUBLIC; else to="\"$grantee\""; fi
        sql+="GRANT $priv ON $target TO $to;"$'\n'
    done <<< "$HARDENING_BEFORE"
    sql+="ALTER ROLE \"$HARDENING_READER\" RESET standard_conforming_strings;"$'\n'
    sql+="ALTER ROLE \"$HARDENING_READER\" RESET row_security;"$'\n'
    pg_psql -c "BEGIN;"$'\n'"$sql"$'\n'"COMMIT;" > /dev/null
}

hardening_revert() {
    [ -n "$HARDENING_BEFORE" ] || return 0
    local out
    if ! out=$(_hardening_revert 2>&1); then
        printf 'FAIL: could not revert sql/hardening.sql: %s\n' "$out" >> "$TEST_DIR/hardening-revert.log"
        return 1
    fi
}

hardening_reverted() {
    hardening_revert || fail "could not revert sql/hardening.sql (see hardening-revert.log)"
    assert_eq "$HARDENING_BEFORE" "$(hardening_snapshot)" "privileges and settings after the revert"
}

reader_psql() {
    PGPASSFILE=$PG_PASSFILE timeout -k 5 "$LIB_CMD_TIMEOUT_S" psql -X -A -t -q -w \
        -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
        "host=127.0.0.1 port=$PG_PORT user=$HARDENING_READER dbname=$HARDENING_DATABASE" "$@"
}

reader_fails() {
    local out
    if out=$(reader_psql -c "$1" 2>&1); then
        fail "$3: succeeded as $HARDENING_READER: $out"
    fi
    assert_contains "$out" "42501" "$3 (SQLSTATE)"
    assert_contains "$out" "$2" "$3"
}
