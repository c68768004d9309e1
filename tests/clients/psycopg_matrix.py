"""psycopg 3 (Debian's python3-psycopg) through pgmesh, run by tests/integration/test_client_psycopg.sh.

Two clients, tenants DE and FR, take turns transaction by transaction on pgmesh's one server
connection: protocol-level prepared statements (one prepared at once with prepare=True, one by the
default prepare_threshold) reused across 10 transactions each, then server-side (named) cursors
fetched a row at a time. Every result must be the client's own tenant's rows. Exits non-zero with
the first mismatch; prints "psycopg: ok" last when everything held.
Environment: see tests/clients/common.sh (PG* for the connection, TOKEN_*, SESSIONS_*, CAMPAIGNS_*).
"""

import contextlib
import os
import sys

import psycopg

NAME = "psycopg"
TENANTS = ("DE", "FR")
TRANSACTIONS = 10

# Each row also carries the claim the server saw, a bound parameter (so a statement bound with
# another client's values shows) and the server connection's pid (to show the connection was shared).
QUERIES = {
    "sessions": "SELECT session_id, country_code, current_setting('request.jwt.claim.tenant'), %s::int, pg_backend_pid()"
                " FROM core.fct_playback_sessions ORDER BY session_id",
    "campaigns": "SELECT campaign_id, country_code, current_setting('request.jwt.claim.tenant'), %s::int, pg_backend_pid()"
                 " FROM marketing.stg_local_campaigns ORDER BY campaign_id",
}


class Mismatch(Exception):
    pass


def expected_ids(tenant, table):
    return [int(x) for x in os.environ[f"{table.upper()}_{tenant}"].split(",")]


def check(rows, tenant, table, tag, what):
    """Returns the server pids seen; raises Mismatch unless rows are exactly tenant's, tagged tag."""
    ids = [r[0] for r in rows]
    if ids != expected_ids(tenant, table):
        raise Mismatch(f"{tenant} {what}: expected {table} ids {expected_ids(tenant, table)}, got {ids}")
    for r in rows:
        if r[1] != tenant or r[2] != tenant or r[3] != tag:
            raise Mismatch(f"{tenant} {what}: expected country_code, claim {tenant} and parameter {tag}, got row {r}")
    return {r[4] for r in rows}


def connect(tenant):
    return psycopg.connect(password=os.environ[f"TOKEN_{tenant}"], autocommit=True)


def prepared_statements(conns, pids):
    # The two tenants prepare their statements in opposite orders, so psycopg's first statement name
    # (_pg3_0) holds a different query on each client while both share one server connection.
    order = {"DE": ("sessions", "campaigns"), "FR": ("campaigns", "sessions")}
    for i in range(TRANSACTIONS):
        for tenant in TENANTS:
            conn = conns[tenant]
            first, second = order[tenant]
            # Odd rounds run in an explicit transaction, even ones as autocommit statements.
            with conn.transaction() if i % 2 else contextlib.nullcontext():
                tag = i * 10 + 1
                rows = conn.execute(QUERIES[first], (tag,), prepare=True).fetchall()
                pids[tenant] |= check(rows, tenant, first, tag, f"{first} prepared at once, transaction {i + 1}")
                tag += 1
                rows = conn.execute(QUERIES[second], (tag,)).fetchall()
                pids[tenant] |= check(rows, tenant, second, tag, f"{second} prepared by threshold, transaction {i + 1}")
                if i == TRANSACTIONS - 1:
                    expect_prepared_on_server(conn, tenant)


def expect_prepared_on_server(conn, tenant):
    """By now psycopg uses named statements for both queries (prepare_threshold is 5): they must exist
    on the server connection that runs this client's statements, whatever pgmesh names them."""
    texts = [r[0] for r in conn.execute("SELECT statement FROM pg_prepared_statements", prepare=False)]
    for name, q in QUERIES.items():
        wanted = q.replace("%s", "$1")
        if wanted not in texts:
            raise Mismatch(f"{tenant}: the {name} statement is not prepared on the server connection; it has {texts}")


def server_cursors(conns, pids):
    for i in range(3):
        for tenant in TENANTS:
            conn = conns[tenant]
            tag = 1000 + i
            with conn.transaction():
                # The same cursor name on both clients: a cursor lives and dies in its transaction.
                with conn.cursor(name="tenant_rows") as cur:
                    cur.itersize = 1
                    cur.execute(QUERIES["sessions"], (tag,))
                    rows = [cur.fetchone()]
                    rows += cur.fetchmany(1)
                    rows += cur.fetchall()
                    if cur.fetchone() is not None:
                        raise Mismatch(f"{tenant} server cursor {i + 1}: rows after the end")
                pids[tenant] |= check(rows, tenant, "sessions", tag, f"server cursor, transaction {i + 1}")


def main():
    conns = {t: connect(t) for t in TENANTS}
    pids = {t: set() for t in TENANTS}
    try:
        prepared_statements(conns, pids)
        print(f"{NAME}: prepared statements across {TRANSACTIONS} transactions per tenant: right rows")
        server_cursors(conns, pids)
        print(f"{NAME}: server-side cursors: right rows")
    finally:
        for c in conns.values():
            c.close()
    if os.environ.get("EXPECT_SHARED_SERVER") == "1" and not pids["DE"] & pids["FR"]:
        raise Mismatch(f"DE and FR never shared a server connection (pids DE {pids['DE']}, FR {pids['FR']})")
    print(f"{NAME}: server connections DE {sorted(pids['DE'])}, FR {sorted(pids['FR'])}")
    print(f"{NAME}: ok")


if __name__ == "__main__":
    try:
        main()
    except Mismatch as e:
        sys.exit(f"{NAME}: FAIL: {e}")
    except psycopg.Error as e:
        diag = e.diag
        sys.exit(f"{NAME}: FAIL: {type(e).__name__} {diag.sqlstate}: {e}")
