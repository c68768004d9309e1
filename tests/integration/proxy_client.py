"""A PostgreSQL client that picks its source address and may speak the PROXY protocol itself, for
test_proxy_protocol.sh and test_haproxy_peers.sh (psql cannot bind its source address, nor send a
PROXY header).

  proxy_client.py PORT SQL [ADMIN_TOKEN]
      connects to 127.0.0.1:PORT from SRC (default: any), sends HEADER first if asked, logs in with
      TOKEN (cleartext password, as pgmesh asks), runs SQL and prints "local_port=N", then each row
      as "row=a|b". With ADMIN_TOKEN, while still connected, runs SHOW CLIENTS on the admin console
      (dbname=pgmesh, straight to PORT or to ADMIN_PORT) and prints each row as "client=a|b|...".
      When pgmesh closes the connection before login it prints "closed" and exits 3; an
      ErrorResponse prints "error=SQLSTATE message" and exits 2.

Environment: TOKEN, SRC (source address to bind), HEADER (none, v1, v2, v2-local, v1-unknown,
garbage: a header claiming to come from HDR_SRC:HDR_PORT, default 203.0.113.9:4242), SPLIT=1
(the header sent a few bytes at a time with pauses, the startup packet after it in its own send;
otherwise header and startup packet go out in one send), ADMIN_PORT, DEADLINE_S (default 10).
"""

import os
import socket
import struct
import sys
import time

from attack_wire import parse_row, read_message  # the same directory, sys.path[0]
from proto_wire import message, startup_packet

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def header(kind, src, port):
    if kind == "v1":
        return ("PROXY TCP4 %s 127.0.0.1 %d 6432\r\n" % (src, port)).encode()
    if kind == "v1-unknown":
        return b"PROXY UNKNOWN\r\n"
    if kind == "garbage":
        return b"PROXY \x01\x02 this is no header\r\n"
    if kind in ("v2", "v2-local"):
        # PROXY (0x21) or LOCAL (0x20), TCP over IPv4 (0x11); addresses, ports, then an ALPN TLV.
        body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", port, 6432)
        body += b"\x01" + struct.pack("!H", 2) + b"pg"
        cmd = 0x21 if kind == "v2" else 0x20
        return V2_SIG + bytes([cmd, 0x11]) + struct.pack("!H", len(body)) + body
    return b""


class Closed(Exception):
    pass


class PgError(Exception):
    pass


class Conn:
    def __init__(self, port, src=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if src:
            self.sock.bind((src, 0))
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.deadline = time.monotonic() + float(os.environ.get("DEADLINE_S", "10"))

    def next(self):
        t, body = read_message(self, self.deadline)
        if t is None:
            raise Closed()
        if t == b"E":
            f = {}
            for part in body.split(b"\0"):
                if part:
                    f[chr(part[0])] = part[1:].decode(errors="replace")
            raise PgError("%s %s" % (f.get("C", "?"), f.get("M", "?")))
        return t, body

    def login(self, token, database, prefix=b"", split=False):
        packet = startup_packet("analyst", database, "proxy_client")
        if split:
            for i in range(0, len(prefix), 5):
                self.sock.sendall(prefix[i:i + 5])
                time.sleep(0.05)
            self.sock.sendall(packet)
        else:
            self.sock.sendall(prefix + packet)
        while True:
            t, body = self.next()
            if t == b"R":
                code = struct.unpack("!i", body[:4])[0]
                if code == 3:
                    self.sock.sendall(message(b"p", token.encode() + b"\0"))
                elif code != 0:
                    raise PgError("unexpected authentication request %d" % code)
            elif t == b"Z":
                return

    def query(self, sql):
        self.sock.sendall(message(b"Q", sql.encode() + b"\0"))
        rows = []
        while True:
            t, body = self.next()
            if t == b"D":
                rows.append("|".join("" if v is None else v for v in parse_row(body)))
            elif t == b"Z":
                return rows


def main():
    port, sql = int(sys.argv[1]), sys.argv[2]
    admin_token = sys.argv[3] if len(sys.argv) > 3 else None
    env = os.environ
    prefix = header(env.get("HEADER", "none"), env.get("HDR_SRC", "203.0.113.9"), int(env.get("HDR_PORT", "4242")))
    try:
        c = Conn(port, env.get("SRC") or None)
        print("local_port=%d" % c.sock.getsockname()[1], flush=True)
        c.login(env["TOKEN"], "media_analytics", prefix, env.get("SPLIT") == "1")
        for row in c.query(sql):
            print("row=" + row)
        if admin_token:
            a = Conn(int(env.get("ADMIN_PORT", port)))
            a.login(admin_token, "pgmesh")
            for row in a.query("SHOW CLIENTS"):
                print("client=" + row)
        c.sock.sendall(message(b"X", b""))
    except Closed:
        print("closed")
        return 3
    except PgError as e:
        print("error=%s" % e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
