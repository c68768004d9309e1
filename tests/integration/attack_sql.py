"""The SQL attacks of tests/integration/test_enforcement_attacks.sh in extended protocol.

psycopg 3 sends a statement without parameters as a simple Query unless asked otherwise; every
statement here goes with binary=True, i.e. PQsendQueryParams: Parse/Bind/Describe/Execute/Sync of
the unnamed statement (checked once below: two statements in one are refused as in any Parse).
Each attack of the table runs inside an explicit transaction and in autocommit, on one attacker
connection: it must fail with 42501 and the message of the layer the table names; inside the
transaction the state cannot be read afterwards (the block is aborted, not changed); after it, on
the same connection, the state is the attacker's. In transaction pooling a victim of another
tenant reads its own state after each attack, on the same server connection (a pool of one).

Environment: MESH_DSN_DE, MESH_DSN_FR, ATTACKS (the table: name TAB layer TAB sql per line),
STATE_SQL, WANT_DE, WANT_FR, POOL_MODE. Prints "ok ..." per attempt and, last, "attacks: N".
"""

import os
import sys

import psycopg
from psycopg import errors

# What tells the layers apart: pgmesh's guard answers for the server ("... is managed by
# pgmesh"); PostgreSQL refuses the superuser-only claims, and the extension the limits.
LAYERS = {
    "guard": ("is managed by pgmesh",),
    "server": ("permission denied to set parameter", "pgmesh: "),
}


class Fail(Exception):
    pass


def layer_of(message, layer):
    if layer == "server" and "managed by pgmesh" in message:
        return False
    return any(message.startswith(n) or n in message for n in LAYERS[layer])


def read_state(conn):
    got, pid = conn.execute(os.environ["STATE_SQL"], binary=True).fetchone()
    return got, pid


def attempt(conn, name, layer, sql, autocommit, pid_seen):
    where = f"{os.environ['POOL_MODE']} pooling, extended protocol, {'autocommit' if autocommit else 'in a transaction'}: {name}"
    conn.autocommit = autocommit
    try:
        conn.execute(sql, binary=True)
        raise Fail(f"{where}: the attack succeeded")
    except errors.InsufficientPrivilege as e:
        msg = e.diag.message_primary or str(e)
        if not layer_of(msg, layer):
            raise Fail(f"{where}: 42501 [{msg}] is not from the {layer} layer")
    if not autocommit:
        try:
            got = read_state(conn)
            raise Fail(f"{where}: the transaction went on after the refusal, state {got}")
        except errors.InFailedSqlTransaction:
            pass
        conn.rollback()
    got, pid = read_state(conn)
    if not autocommit:
        conn.rollback()
    if got != os.environ["WANT_DE"]:
        raise Fail(f"{where}: state afterwards {got}, want {os.environ['WANT_DE']}")
    pid_seen.add(pid)
    print(f"ok   {where}: 42501 from the {layer} layer: {msg}; state {got} (backend {pid})")


def main():
    with open(os.environ["ATTACKS"]) as f:
        table = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    count = 0
    pids = set()
    try:
        conn = psycopg.connect(os.environ["MESH_DSN_DE"], autocommit=True)
        try:
            conn.execute("SELECT 1; SELECT 2", binary=True)
            raise Fail("two statements in one went through: not the extended protocol")
        except errors.SyntaxError:
            pass
        # In transaction pooling the victim shares the pool's one server connection between the
        # attacker's transactions; in session pooling the attacker holds it (the .sh checks after).
        victim = None
        if os.environ["POOL_MODE"] == "transaction":
            victim = psycopg.connect(os.environ["MESH_DSN_FR"], autocommit=True)
        for name, layer, sql in table:
            for autocommit in (False, True):
                attempt(conn, name, layer, sql, autocommit, pids)
                count += 1
                if victim:
                    got, pid = read_state(victim)
                    if got != os.environ["WANT_FR"]:
                        raise Fail(f"victim after {name}: state {got}, want {os.environ['WANT_FR']}")
                    pids.add(pid)
        if len(pids) != 1:
            raise Fail(f"the attempts ran on backends {sorted(pids)}, not on one")
        conn.close()
        if victim:
            victim.close()
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    print(f"attacks: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
