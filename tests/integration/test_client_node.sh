#!/usr/bin/env bash
# node-postgres (npm pg) through pgmesh in transaction pooling, DE and FR clients taking turns on
# one server connection: named queries across 10 transactions (autocommit and explicit), then on
# pg.Pool clients of both tenants at once; the same query name holds a different query on each
# tenant. tests/clients/node/matrix.js checks that each gets only its own tenant's rows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../clients/common.sh"

command -v node > /dev/null || fail "node is missing (make deps installs nodejs)"
[ -f "$CLIENTS_DIR/node/node_modules/pg/package.json" ] \
    || fail "node-postgres is not installed in tests/clients/node (make deps runs npm ci there)"

clients_start
clients_run node 45 node "$CLIENTS_DIR/node/matrix.js"
assert_eq "3" "$(mesh_psql "$TOKEN_DE" -c 'SELECT count(*) FROM core.fct_playback_sessions')" "DE after node"
mesh_stop
