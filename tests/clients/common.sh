# Shared by the client-matrix tests (tests/integration/test_client_*.sh), sourced after lib.sh.
# The client programs next to this file check rows against what the wrapper hands them here, so
# their expectations come from the database itself (as superuser), not from a copy of demo/mesh.sql.
#
#   clients_start   pgmesh in transaction pooling on a pool of ONE server connection, so the DE and
#                   FR clients' transactions take turns on the same server connection; exports for
#                   the programs PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE (libpq's names; the
#                   Java program reads them too), TOKEN_DE and TOKEN_FR (the passwords), and
#                   SESSIONS_DE/FR and CAMPAIGNS_DE/FR (comma-separated ids each tenant must see in
#                   core.fct_playback_sessions and marketing.stg_local_campaigns), and
#                   EXPECT_SHARED_SERVER=1: the programs check that both tenants' transactions ran
#                   on one server connection (by pg_backend_pid)
#   clients_run NAME SECONDS CMD...
#                   runs CMD under timeout with its output in $TEST_DIR/NAME.txt; fails showing that
#                   output and the end of the pgmesh log unless CMD exits 0 and its last line is
#                   "NAME: ok" (so a program that stopped early without an error cannot pass)
#
# CLIENTS_POOL_MODE=session (in the environment of run.sh) runs the same programs in session
# pooling, on a pool of eight (a server connection per client connection) with
# EXPECT_SHARED_SERVER=0: a way to tell a client program's own bug from a pgmesh one, not what the
# suite checks.

CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

clients_start() {
    mesh_config
    local mode=${CLIENTS_POOL_MODE:-transaction}
    ini_set pgmesh pool_mode "$mode"
    if [ "$mode" = transaction ]; then
        ini_set pgmesh default_pool_size 1
        export EXPECT_SHARED_SERVER=1
    else
        ini_set pgmesh default_pool_size 8
        export EXPECT_SHARED_SERVER=0
    fi
    mesh_start
    export PGHOST=127.0.0.1 PGPORT=$MESH_PORT PGDATABASE=media_analytics PGUSER=analyst PGSSLMODE=disable
    local t ids
    for t in DE FR; do
        export "TOKEN_$t=$(mint "$t" regional_analyst)"
        ids=$(pg_psql -c "SELECT string_agg(session_id::text, ',' ORDER BY session_id) FROM core.fct_playback_sessions WHERE country_code = '$t'")
        export "SESSIONS_$t=$ids"
        ids=$(pg_psql -c "SELECT string_agg(campaign_id::text, ',' ORDER BY campaign_id) FROM marketing.stg_local_campaigns WHERE country_code = '$t'")
        export "CAMPAIGNS_$t=$ids"
    done
    # Tenants with the same rows would make a claim mix-up invisible.
    [ "$SESSIONS_DE" != "$SESSIONS_FR" ] && [ "$CAMPAIGNS_DE" != "$CAMPAIGNS_FR" ] \
        || fail "clients_start: DE and FR must see different rows"
}

clients_run() {
    [ $# -ge 3 ] || fail "usage: clients_run NAME SECONDS CMD..."
    local name=$1 secs=$2 out=$TEST_DIR/$1.txt st=0 started=$SECONDS
    shift 2
    timeout -k 5 "$secs" "$@" > "$out" 2>&1 < /dev/null || st=$?
    if [ "$st" != 0 ] || [ "$(tail -n 1 "$out")" != "$name: ok" ]; then
        tail -n 40 "$out" >&2
        echo "--- end of $MESH_LOG:" >&2
        tail -n 20 "$MESH_LOG" >&2
        [ "$st" != 124 ] || fail "$name: killed after $secs s"
        [ "$st" != 0 ] || fail "$name: exited with status 0 but did not print \"$name: ok\" last"
        fail "$name: exited with status $st"
    fi
    echo "$name: passed in $((SECONDS - started)) s"
}
