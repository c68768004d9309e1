"""Protocol sequences no driver sends, for test_startup_pipelined.sh and test_idle_unsynced.sh.

Speaks the v3 protocol by hand over TCP without TLS (PostgreSQL documentation, "Frontend/Backend
Protocol", "Message Flow" and "Message Formats"). Every read has a deadline; a failure exits 1
with what arrived.

  proto_wire.py login           StartupMessage and PasswordMessage in one segment, without waiting
                                for AuthenticationCleartextPassword: AuthenticationOk and
                                ReadyForQuery must follow within the deadline
  proto_wire.py login-query SQL the same with a Query behind them: prints the Query's rows
  proto_wire.py unsynced SQL [execute]
                                logs in, sends Parse of SQL (with execute, Bind and Execute too,
                                SQL returning one row) and Flush, no Sync, reads the answers, then
                                stays silent: prints the error that ends the session (severity,
                                SQLSTATE, message, detail)

Environment: MESH_PORT, TOKEN, DEADLINE_S (login, default 5), WAIT_S (unsynced, default 20).
"""

import os
import socket
import struct
import sys
import time

from attack_wire import read_message  # the same directory, sys.path[0]


class Fail(Exception):
    pass


def startup_packet(user, database, application_name="proto_wire"):
    body = struct.pack("!i", 196608)
    for k, v in (("user", user), ("database", database), ("application_name", application_name)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def message(t, body):
    return t + struct.pack("!i", len(body) + 4) + body


def fields(body):
    """ErrorResponse/NoticeResponse fields: code letter -> text."""
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def read(self, deadline):
        """The next message as (type, body) before the monotonic deadline; (None, None) once the
        peer closed."""
        try:
            return read_message(self, deadline)
        except TimeoutError:
            raise Fail(f"nothing more within the deadline (have {self.buf[:40]!r})") from None

    def until_ready(self, deadline):
        """Messages up to ReadyForQuery: (authentication codes seen, rows, first error)."""
        auths, rows, error = [], [], None
        while True:
            t, b = self.read(deadline)
            if t is None:
                raise Fail(f"connection closed before ReadyForQuery (error {error})")
            if t == b"R":
                auths.append(struct.unpack("!i", b[:4])[0])
            elif t == b"E" and error is None:
                error = fields(b)
            elif t == b"D":
                n = struct.unpack("!h", b[:2])[0]
                pos, row = 2, []
                for _ in range(n):
                    ln = struct.unpack("!i", b[pos:pos + 4])[0]
                    pos += 4
                    row.append(None if ln < 0 else b[pos:pos + ln].decode())
                    pos += max(ln, 0)
                rows.append(row)
            elif t == b"Z":
                return auths, rows, error


def login_pipelined(port, token, sql):
    """Startup, password (and a Query) in one sendall: pgmesh asks for the password (code 3) on a
    connection without TLS, but the client need not wait for it."""
    c = Conn(port)
    data = startup_packet("analyst", "media_analytics") + message(b"p", token.encode() + b"\0")
    if sql:
        data += message(b"Q", sql.encode() + b"\0")
    c.sock.sendall(data)
    deadline = time.monotonic() + float(os.environ.get("DEADLINE_S", "5"))
    auths, _, error = c.until_ready(deadline)
    if error or auths != [3, 0]:
        raise Fail(f"login: authentication codes {auths}, error {error}")
    print("ok login")
    if sql:
        _, rows, error = c.until_ready(deadline)
        if error:
            raise Fail(f"query: {error}")
        for row in rows:
            print("|".join("" if v is None else v for v in row))
    c.sock.sendall(message(b"X", b""))
    c.sock.close()


def unsynced(port, token, sql, execute):
    c = Conn(port)
    c.sock.sendall(startup_packet("analyst", "media_analytics"))
    deadline = time.monotonic() + 10
    t, b = c.read(deadline)
    if t != b"R" or struct.unpack("!i", b[:4])[0] != 3:
        raise Fail(f"expected AuthenticationCleartextPassword, got {t} {b!r}")
    c.sock.sendall(message(b"p", token.encode() + b"\0"))
    c.until_ready(deadline)
    # Parse of the unnamed statement (Bind and Execute too when execute) and Flush: the server
    # answers each and then waits.
    data = message(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
    want = [b"1"]
    if execute:
        data += message(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0)) + message(b"E", b"\0" + struct.pack("!i", 0))
        want += [b"2", b"D", b"C"]
    c.sock.sendall(data + message(b"H", b""))
    for w in want:
        t, b = c.read(deadline)
        if t != w:
            raise Fail(f"expected {w}, got {t} {b!r}")
    print("ok answered")
    wait_deadline = time.monotonic() + float(os.environ.get("WAIT_S", "20"))
    while True:
        t, b = c.read(wait_deadline)
        if t is None:
            raise Fail("closed without an error")
        if t == b"E":
            e = fields(b)
            print(f"{e.get('S')} {e.get('C')} {e.get('M')} - {e.get('D', '')}")
            break
    t, _ = c.read(time.monotonic() + 10)
    if t is not None:
        raise Fail(f"session not ended after the error (got {t})")
    print("ok closed")


def main():
    port = int(os.environ["MESH_PORT"])
    token = os.environ["TOKEN"]
    mode = sys.argv[1]
    try:
        if mode == "login":
            login_pipelined(port, token, None)
        elif mode == "login-query":
            login_pipelined(port, token, sys.argv[2])
        elif mode == "unsynced":
            unsynced(port, token, sys.argv[2], sys.argv[3:] == ["execute"])
        else:
            raise Fail(f"unknown mode {mode}")
    except (Fail, OSError) as e:
        print(f"FAIL {mode}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
