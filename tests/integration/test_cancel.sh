#!/usr/bin/env bash
# Cancel through pgmesh (cancel.c): PQcancel stops that client's pg_sleep(30) with 57014 in simple,
# extended and explicit-transaction form while another client's query runs on; a CancelRequest
# with a wrong key or pid does nothing; with a pool of one, a cancel from an idle client must not
# hit the query another client now runs on the shared server connection.
. "$(dirname "$0")/lib.sh"
once_without_extension "a cancel request is the same with or without it"
export PG_SOCKET_DIR PG_PORT

mesh_config
mesh_start
TOK_GOOD=$(mint DE regional_analyst)
export TOK_GOOD

"$BUILD/tests/integration/cancel" basic

mesh_stop
ini_set pgmesh default_pool_size 1
mesh_start
"$BUILD/tests/integration/cancel" stale
mesh_stop
