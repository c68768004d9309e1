#!/usr/bin/env bash
# psycopg 3 (Debian's python3-psycopg) through pgmesh in transaction pooling, DE and FR clients
# taking turns on one server connection: prepared statements reused across 10 transactions (one
# with prepare=True, one by the default prepare_threshold) and server-side cursors, each returning
# only the client's own tenant's rows (tests/clients/psycopg_matrix.py checks them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../clients/common.sh"

# Debian's interpreter: the one python3-psycopg is installed for, whatever else is first on PATH.
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"

clients_start
clients_run psycopg 45 "$PYTHON" "$CLIENTS_DIR/psycopg_matrix.py"
# pgmesh is still serving: the clients' statements left nothing behind that breaks the next one.
assert_eq "3" "$(mesh_psql "$TOKEN_DE" -c 'SELECT count(*) FROM core.fct_playback_sessions')" "DE after psycopg"
mesh_stop
