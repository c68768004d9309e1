#!/usr/bin/env bash
# FunctionCall messages (fastpath.c): refused with 42501 unless they call a large-object function,
# so set_config by OID cannot change a claim or a limit; libpq's lo_* API keeps working. Both pool
# modes, through a pool of one.
. "$(dirname "$0")/lib.sh"

mesh_config
ini_set pgmesh default_pool_size 1
TOK_DE=$(mint DE regional_analyst)
export TOK_DE
for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    "$BUILD/tests/integration/fastpath" || fail "fastpath failed in $mode pooling"
    grep -q 'refused a FunctionCall of 2078' "$MESH_LOG" || fail "no log line for the refused set_config call"
    mesh_stop
done
