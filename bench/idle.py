#!/usr/bin/python3
"""Memory of a pooler under many clients (bench/run.sh): a connect/query/disconnect storm, then
many idle logged-in clients held open at once; the pooler's VmRSS is read from /proc before,
during and after. Raw sockets rather than libpq, so that 10,000 clients cost this process little
and nothing here waits on the pooler except the login itself.

Prints key=value lines (sizes in KiB): rss_start, rss_after_storm, rss_before_idle, rss_held,
rss_released, idle_bytes_per_client, storm_seconds, idle_seconds."""
import argparse
import hashlib
import resource
import socket
import struct
import sys
import threading
import time


def rss_kib(pid):
    """VmRSS of the pooler and its children (pgmesh's workers), in KiB."""
    total = 0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            else:
                raise RuntimeError(f"no VmRSS for pid {p}")
    return total


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the pooler")
        buf += chunk
    return buf


def read_msg(s):
    head = recv_exact(s, 5)
    length = struct.unpack("!I", head[1:])[0]
    return head[:1], recv_exact(s, length - 4)


def send_msg(s, tag, body):
    s.sendall(tag + struct.pack("!I", len(body) + 4) + body)


def login(args):
    """A logged-in socket (ReadyForQuery seen). Cleartext (pgmesh: the token) or md5 (PgBouncer)."""
    s = socket.create_connection(("127.0.0.1", args.port), timeout=30)
    params = b"user\0" + args.user.encode() + b"\0database\0" + args.db.encode() + b"\0\0"
    s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
    while True:
        tag, body = read_msg(s)
        if tag == b"R":
            code = struct.unpack("!I", body[:4])[0]
            if code == 3:
                send_msg(s, b"p", args.password.encode() + b"\0")
            elif code == 5:
                inner = hashlib.md5((args.password + args.user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                send_msg(s, b"p", b"md5" + outer.encode() + b"\0")
            elif code != 0:
                raise RuntimeError(f"authentication method {code} not supported here")
        elif tag == b"E":
            raise RuntimeError(f"login refused: {body!r}")
        elif tag == b"Z":
            return s


def one_query(s):
    send_msg(s, b"Q", b"SELECT 1\0")
    while True:
        tag, body = read_msg(s)
        if tag == b"E":
            raise RuntimeError(f"query failed: {body!r}")
        if tag == b"Z":
            return


def storm(args):
    errors = []
    per = args.storm // args.concurrency

    def worker(n):
        try:
            for _ in range(n):
                s = login(args)
                one_query(s)
                send_msg(s, b"X", b"")
                s.close()
        except Exception as e:  # reported once below; a failed storm must not pass as a figure
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(per + (1 if i < args.storm % args.concurrency else 0),))
               for i in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"storm: {len(errors)} workers failed, first: {errors[0]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--db", default="bench")
    ap.add_argument("--pid", type=int, required=True, help="the pooler's pid, for its VmRSS")
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--storm", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before each reading")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.clients + 64:
        sys.exit(f"idle: fd hard limit {hard} is below {args.clients} clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    out = {"rss_start": rss_kib(args.pid)}
    t0 = time.monotonic()
    if args.storm > 0:
        storm(args)
    out["storm_seconds"] = round(time.monotonic() - t0, 1)
    time.sleep(args.settle)
    out["rss_after_storm"] = rss_kib(args.pid)

    out["rss_before_idle"] = rss_kib(args.pid)
    t0 = time.monotonic()
    held = [login(args) for _ in range(args.clients)]
    out["idle_seconds"] = round(time.monotonic() - t0, 1)
    time.sleep(args.settle)
    out["rss_held"] = rss_kib(args.pid)
    # One query on a sample of the held clients: they are logged in, not half-open.
    for s in held[:: max(1, len(held) // 100)]:
        one_query(s)
    for s in held:
        send_msg(s, b"X", b"")
        s.close()
    time.sleep(args.settle)
    out["rss_released"] = rss_kib(args.pid)
    out["idle_bytes_per_client"] = round((out["rss_held"] - out["rss_before_idle"]) * 1024 / max(1, args.clients))
    for k, v in out.items():
        print(f"{k}={v}")


if __name__ == "__main__":
    main()
