#!/usr/bin/env bash
# Tenant isolation under a shared pool (tenants.c): 12 clients of DE, FR, ES, IT and the audit role
# interleave transactions of every shape (simple, extended, multi-statement, explicit, failing,
# ROLLBACK, pipeline) on 2 server connections, then on 1; every transaction must see its own
# token's claims and rows. Then PostgreSQL must show no backend left inside a transaction.
. "$(dirname "$0")/lib.sh"

mesh_config
mesh_start

TOK_DE=$(mint DE regional_analyst)
TOK_FR=$(mint FR regional_analyst)
TOK_ES=$(mint ES regional_analyst)
TOK_IT=$(mint IT regional_analyst)
TOK_AUDIT=$(mint HQ global_corporate_audit)
export TOK_DE TOK_FR TOK_ES TOK_IT TOK_AUDIT

echo "== pool of 2, 200 transactions per client"
TXNS=200 "$BUILD/tests/integration/tenants"

mesh_stop
ini_set pgmesh default_pool_size 1
mesh_start
echo "== pool of 1, 60 transactions per client"
TXNS=60 "$BUILD/tests/integration/tenants"

busy=$(pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'media_analytics'
                   AND state LIKE 'idle in transaction%'")
assert_eq 0 "$busy" "backends idle in transaction after the run"
mesh_stop
