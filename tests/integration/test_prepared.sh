#!/usr/bin/env bash
# Named prepared statements in transaction pooling (prepared.c), on a pool of one server
# connection with room for three statements, so that names meet, statements are evicted and
# prepared again, and server connections change hands between the two tenants' transactions.
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set pgmesh default_pool_size 1
ini_set pgmesh max_prepared_statements 3
mesh_start
TOK_DE=$(mint DE regional_analyst)
TOK_FR=$(mint FR regional_analyst)
PG_DSN="host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=media_analytics"
export TOK_DE TOK_FR PG_DSN MESH_PORT
timeout 60 "$BUILD/tests/integration/prepared" || fail "prepared statement cases (above)"
kill -0 "$MESH_PID" 2>/dev/null || fail "pgmesh died"
mesh_stop
