#!/usr/bin/env bash
# What tenants sharing one server role see of, and do to, each other's sessions, and what
# sql/hardening.sql closes. DE and FR (token role regional_analyst, both marketing_domain_role)
# through pgmesh. Without the hardening FR reads DE's running query, literal included, in
# pg_stat_activity, pg_stat_get_activity(NULL) and pg_stat_get_backend_activity, cancels it with
# pg_cancel_backend, ends DE's server connection with pg_terminate_backend, and on a pool of one
# reads the statements DE prepared through pgmesh (pgbench -M prepared) in pg_prepared_statements
# and pg_prepared_statement(). With it each fails with 42501 and DE's query runs on, while pgmesh's
# own cancel (a CancelRequest, cancel.c) still stops a client's query and claims, RLS and prepared
# statements still work. A tenant that guesses a statement's text cannot compute pgmesh's name for
# it (the names are keyed), so it cannot run it to confirm the guess. Runs with and without the
# extension. The suite shares one database: the
# hardening is reverted however the test ends, and privileges afterwards must equal those before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hardening_lib.sh"
export PG_SOCKET_DIR PG_PORT

# A campaign name only DE's statements contain, in a WHERE clause as an application would send it.
MARK="Geheimprojekt-$$-$RANDOM"
DE_SQL="SELECT pg_sleep(60), count(*) FROM marketing.stg_local_campaigns WHERE campaign_name = '$MARK'"
# Its result depends on the claims of whoever runs it.
STMT_SQL="SELECT string_agg(campaign_name, ',' ORDER BY campaign_id) FROM marketing.stg_local_campaigns WHERE campaign_name <> '$MARK'"
ACTIVE_DE="SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND strpos(query, '$MARK') > 0"

hardening_begin
# A query of DE's still sleeping when the test ends: the superuser ends it.
lib_at_exit "pg_psql -c \"SELECT pg_cancel_backend(pid) FROM ($ACTIVE_DE) a\""

fr_psql() {
    mesh_psql "$fr" -v VERBOSITY=verbose "$@"
}

# fr_fails SQL NEEDLE WHAT: FR's statement fails through pgmesh with 42501 and NEEDLE.
fr_fails() {
    local out
    if out=$(fr_psql -c "$1" 2>&1); then
        fail "$3: succeeded for FR: $out"
    fi
    assert_contains "$out" "42501" "$3 (SQLSTATE)"
    assert_contains "$out" "$2" "$3"
}

# de_sleep_start NAME: DE runs DE_SQL through pgmesh in the background (output in de-NAME.txt);
# prints the pid of its server backend once the superuser sees it running (10 s at most).
de_sleep_start() {
    DE_OUT=$TEST_DIR/de-$1.txt
    mesh_psql "$de" -v VERBOSITY=verbose -c "$DE_SQL" > "$DE_OUT" 2>&1 &
    DE_BG=$!
    local pid
    for _ in $(seq 1 100); do
        pid=$(pg_psql -c "$ACTIVE_DE")
        [ -n "$pid" ] && { DE_PID=$pid; return 0; }
        sleep 0.1
    done
    fail "DE's query never showed as active"
}

# de_sleep_ended NEEDLE WHAT: DE's psql ends (10 s at most) with an error containing NEEDLE.
de_sleep_ended() {
    local st=0
    for _ in $(seq 1 100); do
        kill -0 "$DE_BG" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$DE_BG" 2>/dev/null && fail "$2: DE's query still running 10 s later"
    wait "$DE_BG" || st=$?
    [ "$st" != 0 ] || fail "$2: DE's query succeeded: $(cat "$DE_OUT")"
    assert_contains "$(cat "$DE_OUT")" "$1" "$2"
}

# de_prepares: DE runs STMT_SQL once as a named prepared statement through pgmesh.
de_prepares() {
    printf '%s\n' "$STMT_SQL" > "$TEST_DIR/stmt.sql"
    local out=$TEST_DIR/pgbench-de.txt st=0
    PGPASSWORD=$de PGSSLMODE=disable timeout -k 5 60 "$PGBIN/pgbench" -h 127.0.0.1 -p "$MESH_PORT" \
        -U analyst -n -M prepared -t 1 -f "$TEST_DIR/stmt.sql" media_analytics > "$out" 2>&1 || st=$?
    [ "$st" = 0 ] || { cat "$out" >&2; fail "pgbench -M prepared as DE exited with status $st"; }
    assert_contains "$(cat "$out")" "number of transactions actually processed: 1/1" "pgbench as DE"
}

mesh_config
mesh_start
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)

# ---- Without the hardening: each leak is there (pool of two, DE's query on one, FR on the other).
de_sleep_start leak-cancel
assert_eq "$DE_PID|$DE_SQL" \
    "$(fr_psql -c "SELECT pid, query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND strpos(query, '$MARK') > 0")" \
    "FR reads DE's query in pg_stat_activity"
assert_eq "$DE_SQL" "$(fr_psql -c "SELECT query FROM pg_stat_get_activity(NULL) WHERE pid = $DE_PID")" \
    "FR reads DE's query with pg_stat_get_activity(NULL)"
assert_eq "$DE_SQL" \
    "$(fr_psql -c "SELECT pg_stat_get_backend_activity(b) FROM pg_stat_get_backend_idset() b WHERE pg_stat_get_backend_pid(b) = $DE_PID")" \
    "FR reads DE's query with pg_stat_get_backend_activity"
assert_eq "t" "$(fr_psql -c "SELECT pg_cancel_backend($DE_PID)")" "FR's pg_cancel_backend of DE's backend"
de_sleep_ended "57014" "DE's query after FR's pg_cancel_backend"
assert_contains "$(cat "$DE_OUT")" "canceling statement due to user request" "DE's query after FR's pg_cancel_backend"

de_sleep_start leak-terminate
assert_eq "t" "$(fr_psql -c "SELECT pg_terminate_backend($DE_PID)")" "FR's pg_terminate_backend of DE's backend"
de_sleep_ended "57P01" "DE's connection after FR's pg_terminate_backend"
assert_contains "$(cat "$DE_OUT")" "terminating connection due to administrator command" \
    "DE's connection after FR's pg_terminate_backend"
assert_eq "DE" "$(mesh_psql "$de" -c "SHOW request.jwt.claim.tenant")" "DE again, on another server connection"
mesh_stop

# Pool of one: FR's transactions run on the server connection DE prepared its statement on.
ini_set pgmesh default_pool_size 1
mesh_start
de_prepares
out=$(fr_psql -c "SELECT name, statement FROM pg_prepared_statements WHERE strpos(statement, '$MARK') > 0")
assert_contains "$out" "pgmesh_" "FR lists DE's statement in pg_prepared_statements (name)"
assert_contains "$out" "$STMT_SQL" "FR lists DE's statement in pg_prepared_statements (text)"
assert_contains "$(fr_psql -c "SELECT statement FROM pg_prepared_statement()")" "$STMT_SQL" \
    "FR lists DE's statement with pg_prepared_statement()"
mesh_stop

# ---- With the hardening (twice: the second run changes nothing).
hardening_apply
hardening_apply
after=$(hardening_snapshot)
for obj in 'view|pg_catalog.pg_stat_activity' 'view|pg_catalog.pg_prepared_statements' \
        'function|pg_catalog.pg_stat_get_activity(integer)' \
        'function|pg_catalog.pg_stat_get_backend_activity(integer)' \
        'function|pg_catalog.pg_cancel_backend(integer)' \
        'function|pg_catalog.pg_terminate_backend(integer,bigint)' \
        'function|pg_catalog.pg_prepared_statement()'; do
    assert_contains "$HARDENING_BEFORE" "$obj|-|" "PUBLIC's privilege on ${obj#*|} before"
    assert_not_contains "$after" "$obj|-|" "PUBLIC's privilege on ${obj#*|} after"
    assert_not_contains "$after" "$obj|$HARDENING_READER|" "the reader's privilege on ${obj#*|} after"
done

mesh_start # still a pool of one
de_prepares # named statements through pgmesh still work
fr_fails "SELECT name, statement FROM pg_prepared_statements" \
    "permission denied for view pg_prepared_statements" "pg_prepared_statements"
fr_fails "SELECT statement FROM pg_prepared_statement()" \
    "permission denied for function pg_prepared_statement" "pg_prepared_statement()"
# A tenant that guesses DE's text cannot compute pgmesh's name for it: the name is keyed with a
# secret of the pgmesh process (proxy/stmt.c). Before the key, the name was "pgmesh_" and the first
# 16 bytes of the SHA-256 of text, NUL, parameter types, NUL, search_path (pgbench keeps the script
# line's newline and sets no search_path), and FR ran DE's statement by it, confirming the guess.
unkeyed=pgmesh_$(printf '%s\n\0\0' "$STMT_SQL" | sha256sum | cut -c1-32)
if out=$(fr_psql -c "EXECUTE $unkeyed" 2>&1); then
    fail "FR ran DE's statement by the name computed from its text: $out"
fi
assert_contains "$out" "26000" "EXECUTE by the unkeyed name of DE's text"
de_prepares # and DE's statement still serves DE
mesh_stop

ini_set pgmesh default_pool_size 2
mesh_start
de_sleep_start hardened
fr_fails "SELECT pid, query FROM pg_stat_activity WHERE pid = $DE_PID" \
    "permission denied for view pg_stat_activity" "pg_stat_activity"
fr_fails "SELECT query FROM pg_stat_get_activity(NULL)" \
    "permission denied for function pg_stat_get_activity" "pg_stat_get_activity(NULL)"
fr_fails "SELECT pg_stat_get_backend_activity(b) FROM pg_stat_get_backend_idset() b" \
    "permission denied for function pg_stat_get_backend_activity" "pg_stat_get_backend_activity"
fr_fails "SELECT pg_cancel_backend($DE_PID)" \
    "permission denied for function pg_cancel_backend" "pg_cancel_backend"
fr_fails "SELECT pg_terminate_backend($DE_PID)" \
    "permission denied for function pg_terminate_backend" "pg_terminate_backend"
# Views that call pg_stat_get_activity go too (documented in sql/hardening.sql).
fr_fails "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
    "permission denied for function pg_stat_get_activity" "pg_stat_ssl"
assert_eq "$DE_PID" "$(pg_psql -c "$ACTIVE_DE")" "DE's query still runs after FR's attempts"
# The superuser keeps pg_cancel_backend.
assert_eq "t" "$(pg_psql -c "SELECT pg_cancel_backend($DE_PID)")" "the superuser's pg_cancel_backend"
de_sleep_ended "57014" "DE's query after the superuser's pg_cancel_backend"

# pgmesh's own cancel: a client's CancelRequest through pgmesh still stops that client's query.
TOK_GOOD=$de "$BUILD/tests/integration/cancel" basic

q="SELECT current_setting('request.jwt.claim.tenant', true) || ':' || (SELECT string_agg(DISTINCT country_code, ',') FROM core.fct_playback_sessions)"
assert_eq "DE:DE" "$(mesh_psql "$de" -c "$q")" "DE's claims and rows with the hardening"
assert_eq "FR:FR" "$(mesh_psql "$fr" -c "$q")" "FR's claims and rows with the hardening"
mesh_stop

hardening_reverted
