// node-postgres (npm pg, locked in package-lock.json) through pgmesh, run by
// tests/integration/test_client_node.sh. Tenants DE and FR take turns transaction by transaction on
// pgmesh's one server connection with named queries ({name, text, values}: parsed once per
// connection, then only bound), in autocommit and in explicit transactions; then pg.Pool clients
// of both tenants run named queries all at once. The name "first" holds a different query on each
// tenant. Every result must be the tenant's own rows. Exits 1 with the first mismatch; prints
// "node: ok" last when everything held.
// Environment: see tests/clients/common.sh (PG* for the connection, TOKEN_*, SESSIONS_*, CAMPAIGNS_*).
'use strict';

const pg = require('pg');

const NAME = 'node';
const TENANTS = ['DE', 'FR'];
const TRANSACTIONS = 10;
// Each row also carries the claim the server saw, the bound parameter (so a statement bound with
// another client's values shows) and the server connection's pid (to show it was shared).
const QUERIES = {
  sessions: "SELECT session_id, country_code, current_setting('request.jwt.claim.tenant') AS claim, $1::int AS tag, pg_backend_pid() AS pid" +
    ' FROM core.fct_playback_sessions ORDER BY session_id',
  campaigns: "SELECT campaign_id, country_code, current_setting('request.jwt.claim.tenant') AS claim, $1::int AS tag, pg_backend_pid() AS pid" +
    ' FROM marketing.stg_local_campaigns ORDER BY campaign_id',
};
// DE's "first" is the sessions query, FR's the campaigns query.
const ORDER = { DE: ['sessions', 'campaigns'], FR: ['campaigns', 'sessions'] };

class Mismatch extends Error {}

const pids = { DE: new Set(), FR: new Set() };

function expectedIds(tenant, table) {
  const v = process.env[`${table.toUpperCase()}_${tenant}`];
  if (!v) throw new Mismatch(`environment variable ${table.toUpperCase()}_${tenant} is not set`);
  return v.split(',');
}

function check(res, tenant, table, tag, what) {
  const ids = res.rows.map((r) => String(r[table === 'sessions' ? 'session_id' : 'campaign_id']));
  const want = expectedIds(tenant, table);
  if (ids.join(',') !== want.join(',')) {
    throw new Mismatch(`${tenant} ${what}: expected ${table} ids ${want}, got ${ids}`);
  }
  for (const r of res.rows) {
    if (r.country_code !== tenant || r.claim !== tenant || r.tag !== tag) {
      throw new Mismatch(`${tenant} ${what}: expected country_code, claim ${tenant} and parameter ${tag}, got ${JSON.stringify(r)}`);
    }
    pids[tenant].add(r.pid);
  }
}

function config(tenant) {
  const password = process.env[`TOKEN_${tenant}`];
  if (!password) throw new Mismatch(`environment variable TOKEN_${tenant} is not set`);
  // Host, port, database, user and sslmode come from the PG* environment, as with libpq.
  return { password, application_name: 'pgmesh-node-matrix' };
}

// Runs tenant's two named queries, tagged from tag on; q is client.query or pool.query.
async function namedQueries(q, tenant, tag, what) {
  for (const [i, table] of ORDER[tenant].entries()) {
    const name = i === 0 ? 'first' : 'second';
    const res = await q({ name, text: QUERIES[table], values: [tag + i] });
    check(res, tenant, table, tag + i, `${table} as "${name}", ${what}`);
  }
}

async function acrossTransactions() {
  const clients = {};
  try {
    for (const t of TENANTS) {
      clients[t] = new pg.Client(config(t));
      await clients[t].connect();
    }
    for (let i = 0; i < TRANSACTIONS; i++) {
      for (const t of TENANTS) {
        const c = clients[t];
        const q = (cfg) => c.query(cfg);
        // Odd rounds in an explicit transaction, even ones as autocommit statements.
        if (i % 2) await c.query('BEGIN');
        await namedQueries(q, t, i * 10, `${i % 2 ? 'explicit transaction' : 'autocommit'} ${i + 1}`);
        if (i % 2) await c.query('COMMIT');
      }
    }
  } finally {
    for (const c of Object.values(clients)) await c.end().catch(() => {});
  }
}

async function pooled() {
  const pools = {};
  const runs = [];
  try {
    for (const t of TENANTS) pools[t] = new pg.Pool({ ...config(t), max: 2 });
    // All at once: four client connections queue for pgmesh's one server connection, and each pool
    // lends its two connections in whatever order they come back.
    for (let i = 0; i < 10; i++) {
      for (const t of TENANTS) {
        const pool = pools[t];
        runs.push(namedQueries((cfg) => pool.query(cfg), t, 1000 + i * 10, `pooled autocommit ${i + 1}`));
        runs.push((async () => {
          const c = await pool.connect();
          try {
            await c.query('BEGIN');
            await namedQueries((cfg) => c.query(cfg), t, 2000 + i * 10, `pooled transaction ${i + 1}`);
            await c.query('COMMIT');
          } finally {
            c.release();
          }
        })());
      }
    }
    const results = await Promise.allSettled(runs);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    for (const p of Object.values(pools)) await p.end().catch(() => {});
  }
}

async function main() {
  await acrossTransactions();
  console.log(`${NAME}: named queries across ${TRANSACTIONS} transactions per tenant: right rows`);
  await pooled();
  console.log(`${NAME}: named queries on pooled clients: right rows`);
  const shared = [...pids.DE].filter((p) => pids.FR.has(p));
  if (process.env.EXPECT_SHARED_SERVER === '1' && shared.length === 0) {
    throw new Mismatch(`DE and FR never shared a server connection (pids DE ${[...pids.DE]}, FR ${[...pids.FR]})`);
  }
  console.log(`${NAME}: server connections DE ${[...pids.DE].sort()}, FR ${[...pids.FR].sort()}`);
  console.log(`${NAME}: ok`);
}

main().catch((e) => {
  // A server error shows its SQLSTATE and detail, as pgmesh's own errors carry the facts there.
  const kind = e instanceof Mismatch ? '' : ` ${e.constructor.name}${e.code ? ` ${e.code}` : ''}:`;
  console.log(`${NAME}: FAIL:${kind} ${e.message}${e.detail ? ` (${e.detail})` : ''}`);
  process.exit(1);
});
