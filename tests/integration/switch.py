"""Tenant switch hygiene (test_switch.sh): an attacker (DE) and a victim (FR) through a pool of one
server connection, checked by pg_backend_pid() to share it. Each case leaves session state behind
where pgmesh's lexer cannot see it (a named statement executed again, a function body, a plain
function call) and asserts that the victim finds none of it. Usage: switch.py CASE; env DSN_DE,
DSN_FR, SW_SHARED=1 to hold a shared statement on the connection first."""
import os
import sys
import time

import psycopg

CASE = sys.argv[1]


def connect(var):
    return psycopg.connect(os.environ[var], autocommit=True)


def one(conn, sql, prepare=None):
    return conn.execute(sql, prepare=prepare).fetchone()[0]


def pid(conn):
    return one(conn, "SELECT pg_backend_pid()")


def check(cond, what):
    if not cond:
        print(f"FAIL {CASE}: {what}")
        sys.exit(1)


def same_server(a, v):
    pa, pv = pid(a), pid(v)
    check(pa == pv, f"attacker and victim on different server connections ({pa}, {pv})")


def named_setting(a, v):
    # Parse marks the connection dirty; the victim's switch discards it; the attacker's next
    # execution prepares the statement again and runs it with no Parse of its own text.
    sql = "SET search_path = marketing, pg_catalog"
    a.execute(sql, prepare=True)
    one(v, "SELECT 1")
    a.execute(sql, prepare=True)
    same_server(a, v)
    check(one(v, "SHOW search_path") == '"$user", public', "victim inherited the attacker's search_path")


def named_setting_same(a, v):
    # The same, between two clients of one tenant and role, which get no switch reset: the
    # statement's execution marks the connection as its Parse did.
    with connect("DSN_DE") as b:
        named_setting(a, b)


def named_cursor(a, v):
    sql = "DECLARE sw_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 3) g"
    a.execute(sql, prepare=True)
    a.execute("CLOSE sw_cur")
    one(v, "SELECT 1")
    a.execute(sql, prepare=True)
    same_server(a, v)
    check(one(v, "SELECT count(*) FROM pg_cursors") == 0, "victim sees the attacker's WITH HOLD cursor")


def advisory(a, v):
    one(a, "SELECT pg_advisory_lock(4242)")
    n = one(v, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
    same_server(a, v)
    check(n == 0, "victim's session holds the attacker's advisory lock")


def sequence(a, v):
    one(a, "SELECT nextval('marketing.sw_seq')")
    same_server(a, v)
    try:
        val = one(v, "SELECT lastval()")
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return
    check(False, f"victim's lastval() returned the attacker's {val}")


def listen(a, v):
    got = []
    v.add_notify_handler(lambda n: got.append(n))
    one(a, "SELECT marketing.sw_listen()")
    same_server(a, v)
    one(v, "SELECT pg_notify('sw_chan', 'from the victim''s transaction')")
    check(not got, "victim received a notification on the attacker's channel")


def listen_idle(a, v):
    one(a, "SELECT marketing.sw_listen()")
    before = pid(a)
    # A notification while the server connection waits idle in its pool: dropped, and the
    # connection stays (it was closed, every client on it losing it mid-use in a busier pool).
    with psycopg.connect(os.environ["DSN_DIRECT"], autocommit=True) as d:
        d.execute("NOTIFY sw_chan, 'while idle'")
    time.sleep(1)
    after = pid(v)
    check(before == after, f"the server connection was closed ({before}, then {after})")


def dealloc(a, v):
    sql = "SELECT 'victim statement'"
    one(v, sql, prepare=True)
    one(a, "SELECT marketing.sw_dealloc()")
    same_server(a, v)
    # The first execution that meets the missing statement fails (that is how pgmesh learns of
    # it); from the next transaction on the statements are prepared again.
    try:
        one(v, sql, prepare=True)
    except psycopg.errors.InvalidSqlStatementName:
        pass
    for _ in range(3):
        check(one(v, sql, prepare=True) == "victim statement", "the victim's statement goes on failing")
        one(a, "SELECT 1", prepare=True)
    same_server(a, v)


CASES = {
    "named_setting": named_setting,
    "named_setting_same": named_setting_same,
    "named_cursor": named_cursor,
    "advisory": advisory,
    "sequence": sequence,
    "listen": listen,
    "listen_idle": listen_idle,
    "dealloc": dealloc,
}

with connect("DSN_DE") as att, connect("DSN_FR") as vic:
    # With a shared statement on the connection pgmesh's switch runs its own reset, which keeps
    # statements; with none, DISCARD ALL. A lone DEALLOCATE ALL in a simple Query (pgmesh follows
    # it) empties the connection of what earlier cases prepared.
    res = vic.pgconn.exec_(b"DEALLOCATE ALL")
    check(res.status == psycopg.pq.ExecStatus.COMMAND_OK, "DEALLOCATE ALL failed")
    if os.environ.get("SW_SHARED") == "1":
        one(vic, "SELECT 'shared'", prepare=True)
    CASES[CASE](att, vic)
print(f"ok {CASE}")
