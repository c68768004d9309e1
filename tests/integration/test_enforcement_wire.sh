#!/usr/bin/env bash
# Issue 10's attacks below SQL text, with the pgmesh extension in the server (the suite's run with
# PGMESH_EXTENSION=1), by a tenant-DE reader (token role regional_analyst, server role
# marketing_domain_role) in both pool modes through a pool of one (tests/integration/attack_wire.py):
# - set_config by OID in a FunctionCall ('F') message, for the tenant and role claims,
#   statement_timeout and work_mem, in autocommit and inside a transaction: pgmesh's guard refuses
#   it (42501) and the claims, visible rows and limits are unchanged on the same connection. pgmesh
#   never forwards it, so the same calls also go straight to PostgreSQL as the server role after an
#   authentic pgmesh.apply(): the extension refuses them (42501 from PostgreSQL).
# - replaying pgmesh.apply: an FR session of the same role reads the DE victim's apply text in
#   pg_stat_activity (a victim whose first transaction is a Describe leaves it there) and sends it,
#   with psql and psycopg, on its own server connection (not authentic: another backend's nonce)
#   and, through the pool of one, on the victim's (replayed: a counter that backend has used); the
#   victim's own client sends it again too. Each is 42501. A failed apply ends its backend (FATAL),
#   so after the first replay on the victim's backend later ones meet a new backend (not authentic),
#   and where a connection ended the state is read on a new one: each side keeps its own claims,
#   rows and limits.
. "$(dirname "$0")/lib.sh"
if [ -z "${SERVER_KEY_FILE:-}" ]; then
    echo "skipped: needs the pgmesh extension in the suite's cluster (make integration-ext)"
    exit 77
fi
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"
WIRE=$(dirname "$0")/attack_wire.py

count() { pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = '$1'"; }
de_rows=$(count DE)
fr_rows=$(count FR)
all_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions")
[ "$de_rows" -gt 0 ] && [ "$de_rows" -lt "$all_rows" ] && [ "$fr_rows" != "$de_rows" ] ||
    fail "the sample mesh must give DE some rows, fewer than all, and not as many as FR"

mesh_config
ini_set pgmesh default_pool_size 1
# The same database again under another name: another pool of the same server role, from which
# the attacker reads the victim's backend in pg_stat_activity.
ini_set databases media_analytics_b "host=127.0.0.1 port=$PG_PORT dbname=media_analytics passfile=$PG_PASSFILE"
TOKEN_DE=$(mint DE regional_analyst)
TOKEN_FR=$(mint FR regional_analyst)
# The state a session reads after each attempt, and the server connection it read it on.
STATE_SQL="SELECT concat_ws('|', current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claim.role'), (SELECT count(*) FROM core.fct_playback_sessions), current_setting('statement_timeout'), current_setting('work_mem')), pg_backend_pid()::text"
WANT_DE="DE|regional_analyst|$de_rows|30s|128MB"
WANT_FR="FR|regional_analyst|$fr_rows|30s|128MB"
export TOKEN_DE TOKEN_FR STATE_SQL WANT_DE WANT_FR PG_SOCKET_DIR PG_PORT SERVER_KEY_FILE

total=0
run_wire() {
    local out
    out=$("$PYTHON" "$WIRE" "$@" 2>&1) || { printf '%s\n' "$out"; fail "attack_wire.py $*"; }
    printf '%s\n' "$out"
    total=$((total + $(sed -n 's/^attacks: //p' <<< "$out")))
}

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    export MESH_PORT
    run_wire fastpath "$mode"
    # A fresh server connection for the victim: pgmesh sends a server the claims it already holds
    # no more, and the text the attacker reads is that of the victim's own first transaction.
    mesh_stop
    mesh_start
    export MESH_PORT
    run_wire replay "$mode"
    mesh_stop
done
echo "== straight to PostgreSQL (FunctionCall never passes pgmesh)"
run_wire direct
echo "ok: $total attacks refused (FunctionCall set_config by OID, replayed pgmesh.apply); claims, $de_rows of $all_rows rows (DE) and limits 30s/128MB unchanged after each"
