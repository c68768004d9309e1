"""Wire-level attacks for tests/integration/test_enforcement_wire.sh (pgmesh extension in the server).

Speaks just enough of the v3 protocol by hand (PostgreSQL documentation, "Frontend/Backend
Protocol", "Message Formats") to send what drivers do not: FunctionCall ('F') messages, and a
Describe that leaves pgmesh's own pgmesh.apply(...) Query as the text pg_stat_activity shows for
a backend. Every read has a deadline; a refused attack prints what it got, a successful one fails.

  attack_wire.py fastpath MODE   set_config by OID through pgmesh: refused by pgmesh's guard
  attack_wire.py direct          the same FunctionCalls straight to PostgreSQL as the server role,
                                 after an authentic pgmesh.apply(): refused by the extension
  attack_wire.py replay MODE     a second session of the same role reads the victim's apply text in
                                 pg_stat_activity and sends it again, on its own server connection
                                 and on the victim's; the victim's client sends it again too

Environment: MESH_PORT, TOKEN_DE, TOKEN_FR, WANT_DE, WANT_FR, STATE_SQL (see the .sh), and for
direct PG_SOCKET_DIR, PG_PORT, SERVER_KEY_FILE.
Prints "ok ..." per refused attempt and, last, "attacks: N".
"""

import hashlib
import hmac
import os
import re
import select
import socket
import struct
import subprocess
import sys
import time

import psycopg
from psycopg import errors

SET_CONFIG_OID = 2078  # pg_catalog.set_config(text, text, boolean), fixed in pg_proc.dat
DEADLINE_S = 20
attacks = 0


class Fail(Exception):
    pass


class Result:
    """What one request got back: rows (lists of text or None), the first error's fields (code
    letter -> text, empty when none), the FunctionCall's result, and whether the connection
    ended (after a FATAL or a close)."""

    def __init__(self):
        self.rows = []
        self.error = {}
        self.value = None
        self.closed = False

    def sqlstate(self):
        return self.error.get("C", "")

    def describe(self):
        if self.error:
            return f"{self.error.get('S', '?')} {self.sqlstate()}: {self.error.get('M', '')}"
        return f"no error, rows {self.rows}, value {self.value}"


def read_message(conn, deadline):
    """The next message on conn (its sock, and buf holding what arrived but was not yet read) as
    (type, body) before the monotonic deadline; (None, None) once the peer closed. TimeoutError
    when the deadline passes. proto_wire.py reads with it too."""
    while True:
        if len(conn.buf) >= 5:
            n = struct.unpack("!i", conn.buf[1:5])[0]
            if len(conn.buf) >= 1 + n:
                t, b = conn.buf[:1], conn.buf[5:1 + n]
                conn.buf = conn.buf[1 + n:]
                return t, b
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        r, _, _ = select.select([conn.sock], [], [], left)
        if not r:
            continue
        try:
            chunk = conn.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return None, None
        conn.buf += chunk


class Raw:
    """One protocol v3 connection, over TCP (pgmesh) or a Unix socket (PostgreSQL)."""

    def __init__(self, user, database, password=None, port=None, unix_dir=None):
        if unix_dir:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(os.path.join(unix_dir, f".s.PGSQL.{port}"))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
        self.buf = b""
        body = struct.pack("!i", 196608)
        for k, v in (("user", user), ("database", database), ("application_name", "attack_wire")):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        while True:
            t, b = self.read()
            if t == b"R":
                code = struct.unpack("!i", b[:4])[0]
                if code == 3 and password is not None:
                    self.send(b"p", password.encode() + b"\0")
                elif code != 0:
                    raise Fail(f"authentication request {code} not handled")
            elif t == b"E":
                raise Fail(f"login refused: {parse_error(b)}")
            elif t == b"Z":
                return

    def send(self, t, body):
        self.sock.sendall(t + struct.pack("!i", len(body) + 4) + body)

    def read(self):
        """The next message as (type, body); (None, None) once the peer closed."""
        try:
            return read_message(self, time.monotonic() + DEADLINE_S)
        except TimeoutError:
            raise Fail("no reply within the deadline") from None

    def until_ready(self):
        res = Result()
        while True:
            t, b = self.read()
            if t is None:
                res.closed = True
                return res
            if t == b"E" and not res.error:
                res.error = parse_error(b)
            elif t == b"D":
                res.rows.append(parse_row(b))
            elif t == b"V":
                n = struct.unpack("!i", b[:4])[0]
                res.value = None if n < 0 else b[4:4 + n].decode()
            elif t == b"Z":
                return res

    def query(self, sql):
        self.send(b"Q", sql.encode() + b"\0")
        return self.until_ready()

    def extended(self, sql):
        """Parse/Bind/Describe/Execute/Sync of the unnamed statement, as libpq's PQexecParams."""
        self.send(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
        self.send(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
        self.send(b"D", b"P\0")
        self.send(b"E", b"\0" + struct.pack("!i", 0))
        self.send(b"S", b"")
        return self.until_ready()

    def fcall(self, oid, args):
        body = struct.pack("!ihh", oid, 0, len(args))
        for a in args:
            body += struct.pack("!i", len(a.encode())) + a.encode()
        body += struct.pack("!h", 0)
        self.send(b"F", body)
        return self.until_ready()

    def describe_missing(self):
        """Describe of a statement that does not exist, then Sync: a transaction start for pgmesh
        (so it sends the claims first) that changes no backend's query text itself."""
        self.send(b"D", b"Spgmesh_attack_no_such_statement\0")
        self.send(b"S", b"")
        return self.until_ready()

    def close(self):
        try:
            self.send(b"X", b"")
        except OSError:
            pass
        self.sock.close()


def parse_error(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


def parse_row(body):
    n = struct.unpack("!h", body[:2])[0]
    pos, row = 2, []
    for _ in range(n):
        ln = struct.unpack("!i", body[pos:pos + 4])[0]
        pos += 4
        if ln < 0:
            row.append(None)
        else:
            row.append(body[pos:pos + ln].decode(errors="replace"))
            pos += ln
    return row


def state(conn):
    """The state (claims, rows, limits) and the backend pid, as STATE_SQL reads them."""
    res = conn.query(os.environ["STATE_SQL"])
    if res.error or not res.rows:
        raise Fail(f"state: {res.describe()}")
    return res.rows[0][0], res.rows[0][1]


def refused(what, res, layer, want_state, conn, needles):
    """res must be a 42501 whose message holds one of needles; the state read afterwards on conn
    must be want_state."""
    global attacks
    if res.sqlstate() != "42501" or not any(n in res.error.get("M", "") for n in needles):
        raise Fail(f"{what}: got {res.describe()}, want 42501 from {layer} ({' / '.join(needles)})")
    got, pid = state(conn)
    if got != want_state:
        raise Fail(f"{what}: state afterwards {got}, want {want_state}")
    attacks += 1
    print(f"ok   {what}: 42501 from {layer}: {res.error.get('M')}; state {got} (backend {pid})")


# ---- FunctionCall messages ------------------------------------------------------------------

FASTPATH_CALLS = (
    ("set_config(tenant claim)", ["request.jwt.claim.tenant", "FR", "false"]),
    ("set_config(role claim)", ["request.jwt.claim.role", "global_corporate_audit", "false"]),
    ("set_config(statement_timeout = 0)", ["statement_timeout", "0", "false"]),
    ("set_config(work_mem = 4GB)", ["work_mem", "4GB", "false"]),
)


def fastpath_calls(conn, where, layer, needles):
    """Each call in autocommit and inside an explicit transaction; in the transaction the state
    read right after the refused call must fail (the block is aborted), not show a change."""
    want = os.environ["WANT_DE"]
    for name, args in FASTPATH_CALLS:
        refused(f"{where}, autocommit: FunctionCall {name}", conn.fcall(SET_CONFIG_OID, args),
                layer, want, conn, needles)
        res = conn.query("BEGIN")
        if res.error:
            raise Fail(f"{where}: BEGIN: {res.describe()}")
        res = conn.fcall(SET_CONFIG_OID, args)
        after = conn.query(os.environ["STATE_SQL"])
        if after.sqlstate() != "25P02":
            raise Fail(f"{where}, in a transaction: FunctionCall {name}: the block went on: {after.describe()}")
        conn.query("ROLLBACK")
        refused(f"{where}, in a transaction: FunctionCall {name}", res, layer, want, conn, needles)


def fastpath(mode):
    conn = Raw("analyst", "media_analytics", os.environ["TOKEN_DE"], port=int(os.environ["MESH_PORT"]))
    fastpath_calls(conn, f"{mode} pooling, through pgmesh", "pgmesh's guard",
                   ("FunctionCall messages are refused by pgmesh",))
    conn.close()


def mac_hex(key_hex, nonce, counter, pairs):
    msg = b"pgmesh-v1"
    for f in [nonce, str(counter)] + [x for p in pairs for x in p]:
        msg += str(len(f.encode())).encode() + b":" + f.encode()
    return hmac.new(bytes.fromhex(key_hex), msg, hashlib.sha256).hexdigest()


def direct():
    """FunctionCalls never reach PostgreSQL through pgmesh, so the server layer is tested straight
    against it, as the server role over the cluster's Unix socket, with the claims and limits an
    authentic pgmesh.apply() sets (MACed here with the suite's key)."""
    conn = Raw("marketing_domain_role", "media_analytics", port=int(os.environ["PG_PORT"]),
               unix_dir=os.environ["PG_SOCKET_DIR"])
    with open(os.environ["SERVER_KEY_FILE"]) as f:
        key = "".join(f.read().split())
    nonce = conn.query("SELECT pgmesh.nonce()").rows[0][0]
    pairs = [("request.jwt.claim.tenant", "DE"), ("request.jwt.claim.role", "regional_analyst"),
             ("statement_timeout", "30s"), ("work_mem", "128MB")]
    arr = ", ".join(f"'{x}'" for p in pairs for x in p)
    res = conn.query(f"SELECT pgmesh.apply(1, ARRAY[{arr}], '{mac_hex(key, nonce, 1, pairs)}')")
    if res.error:
        raise Fail(f"direct: apply: {res.describe()}")
    fastpath_calls(conn, "straight to PostgreSQL", "the extension",
                   ("permission denied to set parameter", "can only be changed by a top-level SET"))
    conn.close()


# ---- replaying pgmesh.apply -------------------------------------------------------------------

APPLY_RE = re.compile(r"SELECT pgmesh\.apply\(\d+, ARRAY\[.*?\]::pg_catalog\.text\[\], '[0-9a-f]{64}'\)")
NOT_AUTHENTIC = "claims message is not authentic"
REPLAYED = "claims message replayed or out of order"


def attempt_psql(token, database, text):
    """text through pgmesh with psql (simple Query), then the state line, on one connection.
    Returns (error line, state, backend pid or None when the connection ended before the read)."""
    env = dict(os.environ, PGPASSWORD=token, PGSSLMODE="disable", PGCONNECT_TIMEOUT="10")
    out = subprocess.run(
        ["psql", "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=verbose",
         "-h", "127.0.0.1", "-p", os.environ["MESH_PORT"], "-U", "analyst", "-d", database,
         "-c", text, "-c", os.environ["STATE_SQL"]],
        env=env, capture_output=True, text=True, timeout=DEADLINE_S)
    lines = (out.stdout + out.stderr).splitlines()
    err = next((l.strip() for l in lines if re.match(r"(ERROR|FATAL):", l)), "")
    states = [l.rsplit("|", 1) for l in lines if re.match(r"[A-Z]{2}\|", l)]
    if len(states) > 1:
        raise Fail(f"psql printed more than one state: {lines}")
    return err, states[0][0] if states else None, states[0][1] if states else None


def attempt_psycopg(token, database, text):
    """The same with psycopg 3 in extended protocol (Parse/Bind/Execute), autocommit."""
    dsn = (f"host=127.0.0.1 port={os.environ['MESH_PORT']} dbname={database} user=analyst "
           f"password={token} sslmode=disable connect_timeout=10")
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            # binary=True: without parameters psycopg would send a simple Query.
            conn.execute(text, binary=True)
            err = "no error"
        except errors.InsufficientPrivilege as e:
            err = f"ERROR: 42501: {e}"
        except psycopg.OperationalError as e:
            # A FATAL ends the connection, and libpq keeps only its text, not its SQLSTATE: the
            # message names the extension's check, and psql's attempt checks the code.
            err = f"FATAL (no SQLSTATE from libpq): {e}"
        try:
            got, pid = conn.execute(os.environ["STATE_SQL"]).fetchone()
        except psycopg.OperationalError:
            return err, None, None
    return err, got, pid


def attempt_raw(conn, proto, text):
    res = conn.query(text) if proto == "simple" else conn.extended(text)
    err = f"{res.error.get('S')}: {res.sqlstate()}: {res.error.get('M')}" if res.error else "no error"
    if res.closed:
        return err, None, None
    got, pid = state(conn)
    return err, got, pid


class Replay:
    """The replays of one apply text, and what the test knows of the victim's backend: while it
    lives, every attempt that lands on it must be refused as a replay; one that ends its backend
    (a FATAL) leaves the pool of one to open another, where the text is not authentic."""

    def __init__(self, mode, text, victim_pid):
        self.mode, self.text, self.victim_pid, self.victim_alive = mode, text, victim_pid, True

    def check(self, who, proto, on_victims, result, tenant_want, token, database):
        global attacks
        err, got, pid = result
        lands = on_victims and self.victim_alive
        needles = (REPLAYED,) if lands else (NOT_AUTHENTIC,)
        label = f"{self.mode}, {who}, {proto}"
        coded = "42501" in err or err.startswith("FATAL (no SQLSTATE from libpq)")
        if not coded or not any(n in err for n in needles):
            raise Fail(f"{label}: got [{err}], want 42501 {' / '.join(needles)}")
        if got is None:  # the server ended that connection: the state on a new one
            if lands:
                self.victim_alive = False
            fresh = Raw("analyst", database, token, port=int(os.environ["MESH_PORT"]))
            got, pid = state(fresh)
            fresh.close()
            how = f"connection ended; a new one shows state {got}"
        else:
            how = f"state {got}"
            if lands and pid != self.victim_pid:
                raise Fail(f"{label}: ran on backend {pid}, not the victim's {self.victim_pid}")
        if got != tenant_want:
            raise Fail(f"{label}: state afterwards {got}, want {tenant_want}")
        attacks += 1
        print(f"ok   {label}: {err.splitlines()[0]}; {how} (backend {pid})")

    def by_attacker(self, database, on_victims, who):
        fr = os.environ["TOKEN_FR"]
        for proto, send in (("simple protocol (psql)", attempt_psql),
                            ("extended protocol (psycopg)", attempt_psycopg)):
            self.check(who, proto, on_victims, send(fr, database, self.text), os.environ["WANT_FR"],
                       fr, database)

    def by_victim(self, victim):
        """The victim's own client sends the text again; returns its connection (a new one when
        the server ended the old)."""
        de = os.environ["TOKEN_DE"]
        for proto in ("simple", "extended"):
            result = attempt_raw(victim, proto, self.text)
            self.check("the victim's own client sends it again", f"{proto} protocol", True, result,
                       os.environ["WANT_DE"], de, "media_analytics")
            if result[1] is None:
                victim = Raw("analyst", "media_analytics", de, port=int(os.environ["MESH_PORT"]))
        return victim


def replay(mode):
    port = int(os.environ["MESH_PORT"])
    victim = Raw("analyst", "media_analytics", os.environ["TOKEN_DE"], port=port)
    res = victim.describe_missing()
    if res.sqlstate() != "26000":
        raise Fail(f"victim's Describe: {res.describe()}")
    # The attacker: the same token role (so the same server role), another tenant, on the second
    # [databases] entry, i.e. another pool and so another server connection than the victim's.
    spy = Raw("analyst", "media_analytics_b", os.environ["TOKEN_FR"], port=port)
    res = spy.query("SELECT pid::text, query FROM pg_stat_activity WHERE usename = current_user "
                    "AND pid <> pg_backend_pid() AND query LIKE 'SELECT pgmesh.apply(%'")
    spy.close()
    if res.error or len(res.rows) != 1:
        raise Fail(f"{mode}: the victim's apply text is not in pg_stat_activity: {res.describe()}")
    victim_pid, seen = res.rows[0]
    m = APPLY_RE.search(seen)
    if not m or "'DE'" not in seen:
        raise Fail(f"{mode}: pg_stat_activity shows {seen!r}, not DE's pgmesh.apply(...)")
    r = Replay(mode, m.group(0), victim_pid)
    print(f"-- {mode}: backend {victim_pid} shows {r.text[:60]}...{r.text[-12:]}")

    r.by_attacker("media_analytics_b", False, "another session of the role, on its own server connection")
    on_victims = "another session of the role, through the pool of one: on the victim's server connection"
    if mode == "transaction":
        # Between the victim's transactions its server connection is the pool's one idle one.
        r.by_attacker("media_analytics", True, on_victims)
        victim = r.by_victim(victim)
        victim.close()
    else:
        # The victim holds it for its whole session: it goes first, then leaves.
        victim = r.by_victim(victim)
        victim.close()
        r.by_attacker("media_analytics", True, on_victims)


def main():
    what = sys.argv[1]
    try:
        if what == "fastpath":
            fastpath(sys.argv[2])
        elif what == "direct":
            direct()
        elif what == "replay":
            replay(sys.argv[2])
        else:
            raise Fail(f"unknown command {what}")
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    print(f"attacks: {attacks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
