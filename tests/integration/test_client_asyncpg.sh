#!/usr/bin/env bash
# asyncpg (Debian's python3-asyncpg) through pgmesh, as its users write it: a pool
# (asyncpg.create_pool) whose connections run asyncpg's reset query on every release
# (pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL), named prepared statements from its
# statement cache, a transaction, and fetches with parameters, for two tenants, in both pool modes.
# RESET ALL resets the client's own session parameters (its startup TimeZone comes back) and leaves
# pgmesh's claims and limits in force.
. "$(dirname "$0")/lib.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import asyncpg' 2>/dev/null || fail "$PYTHON cannot import asyncpg (make deps installs python3-asyncpg)"

de_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = 'DE'")
fr_rows=$(pg_psql -c "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = 'FR'")
mesh_config
ini_set pgmesh default_pool_size 2
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)

for mode in transaction session; do
    echo "== pool_mode = $mode"
    ini_set pgmesh pool_mode "$mode"
    mesh_start
    MESH_PORT=$MESH_PORT TOKEN_DE=$de TOKEN_FR=$fr DE_ROWS=$de_rows FR_ROWS=$fr_rows MODE=$mode \
        timeout -k 5 120 "$PYTHON" - <<'PY' || fail "$mode: asyncpg"
import asyncio, os, sys
import asyncpg

env = os.environ
STATE = ("SELECT current_setting('request.jwt.claim.tenant'), current_setting('statement_timeout'), "
         "current_setting('TimeZone'), (SELECT count(*) FROM core.fct_playback_sessions)")

async def tenant(token, tenant, rows):
    problems = []
    pool = await asyncpg.create_pool(host="127.0.0.1", port=int(env["MESH_PORT"]), user="analyst",
                                     password=token, database="media_analytics", ssl=False,
                                     min_size=2, max_size=2, server_settings={"TimeZone": "Asia/Tokyo"})
    for i in range(10):
        async with pool.acquire() as con:
            # A session parameter of the client's own, which RESET ALL on release takes back.
            await con.execute("SET TimeZone = 'UTC'")
            got = await con.fetchrow(STATE)
            if (got[0], got[1], got[3]) != (tenant, "30s", rows):
                problems.append(f"{tenant} round {i}: {tuple(got)}")
            async with con.transaction():
                n = await con.fetchval(
                    "SELECT count(*) FROM core.fct_playback_sessions WHERE country_code = $1", tenant)
                if n != rows:
                    problems.append(f"{tenant} round {i}: {n} rows in a transaction, want {rows}")
    async with pool.acquire() as con:
        got = await con.fetchrow(STATE)
        if tuple(got) != (tenant, "30s", "Asia/Tokyo", rows):
            problems.append(f"{tenant} after RESET ALL on release: {tuple(got)}, want its startup TimeZone")
    await pool.close()
    return problems

async def main():
    results = await asyncio.gather(tenant(env["TOKEN_DE"], "DE", int(env["DE_ROWS"])),
                                   tenant(env["TOKEN_FR"], "FR", int(env["FR_ROWS"])))
    problems = [p for r in results for p in r]
    for p in problems:
        print("FAIL", p)
    return not problems

sys.exit(0 if asyncio.run(main()) else 1)
PY
    mesh_stop
done
echo "ok: asyncpg pools of two tenants (reset query with RESET ALL on every release) in both pool modes"
