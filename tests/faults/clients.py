#!/usr/bin/python3
"""Crowds of clients for the fault suite, through pgmesh (the token is the password, user analyst)
or PgBouncer (the server role's password). Each mode writes a JSON summary to --out.

  storm  --n N --concurrency C   N clients connect, run one query and close, C at a time; while they
                                 run, the peak RSS and fd count of --pid are sampled every 20 ms
  hold   --n N                   N clients connect at once (threads), run SELECT 1 and stay connected
                                 while --hold-file exists; the summary (ready: true) is written once
                                 every attempt has ended, and again after they close
  half   --n N                   N raw sockets send the first 8 bytes of a startup packet and stall;
                                 records when the server closes each one (EOF or reset); with
                                 --stage auth they send the whole startup packet (--user) and stall
                                 at the password request instead

Every mode is bounded by --max-seconds.
"""
import argparse
import json
import os
import select
import socket
import struct
import threading
import time

import psycopg


def write(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def credentials(args):
    """(user, [passwords]) to log in with; mesh clients rotate over the tenants' tokens."""
    if args.mode == "mesh":
        with open(args.tokens) as f:
            return "analyst", [line.split()[1] for line in f if line.strip()]
    return "marketing_domain_role", [args.password]


def connect(args, user, password):
    return psycopg.connect(host="127.0.0.1", port=args.port, dbname="media_analytics", user=user,
                           password=password, sslmode="disable", connect_timeout=args.connect_timeout,
                           application_name="fault_crowd")


def proc_sample(pid):
    rss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0, 0
    return rss, fds


def storm(args):
    user, passwords = credentials(args)
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "errors": 0, "last_error": ""}
    deadline = time.time() + args.max_seconds
    done = threading.Event()
    peak = {"rss_kb": 0, "fds": 0}

    def sampler():
        while not done.wait(0.02):
            rss, fds = proc_sample(args.pid)
            peak["rss_kb"] = max(peak["rss_kb"], rss)
            peak["fds"] = max(peak["fds"], fds)

    def worker():
        while time.time() < deadline:
            with lock:
                i = state["next"]
                if i >= args.n:
                    return
                state["next"] += 1
            try:
                with connect(args, user, passwords[i % len(passwords)]) as conn:
                    conn.execute("SELECT 1").fetchone()
                with lock:
                    state["ok"] += 1
            except Exception as exc:
                with lock:
                    state["errors"] += 1
                    state["last_error"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"

    start = time.time()
    threading.Thread(target=sampler, daemon=True).start()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    write(args.out, {"ok": state["ok"], "errors": state["errors"], "attempted": state["next"],
                     "last_error": state["last_error"], "seconds": round(time.time() - start, 2),
                     "peak_rss_kb": peak["rss_kb"], "peak_fds": peak["fds"]})


def hold(args):
    user, passwords = credentials(args)
    lock = threading.Lock()
    state = {"logged_in": 0, "errors": 0, "ended": 0, "last_error": ""}
    conns = []
    deadline = time.time() + args.max_seconds

    def attempt(i):
        try:
            conn = connect(args, user, passwords[i % len(passwords)])
            conn.autocommit = True
            conn.execute("SELECT 1").fetchone()
            with lock:
                state["logged_in"] += 1
                conns.append(conn)
        except Exception as exc:
            with lock:
                state["errors"] += 1
                state["last_error"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
        with lock:
            state["ended"] += 1

    threads = [threading.Thread(target=attempt, args=(i,), daemon=True) for i in range(args.n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.time()))
    with lock:
        write(args.out, dict(state, ready=True, closed=False))
    while os.path.exists(args.hold_file) and time.time() < deadline:
        time.sleep(0.1)
    for conn in conns:
        try:
            conn.close()
        except Exception:
            pass
    with lock:
        write(args.out, dict(state, ready=True, closed=True))


def half(args):
    if args.stage == "auth":
        params = b"user\0" + args.user.encode() + b"\0database\0media_analytics\0\0"
        head = struct.pack("!ii", 8 + len(params), 196608) + params
    else:
        # Length 80 (a plausible startup packet) and protocol 3.0; the parameters never follow.
        head = struct.pack("!ii", 80, 196608)
    socks, errors = [], 0
    for _ in range(args.n):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", args.port))
            s.sendall(head)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            errors += 1
            s.close()
    start = time.time()
    closed_after = {}
    deadline = start + args.max_seconds

    def dump(final):
        times = sorted(closed_after.values())
        write(args.out, {"opened": len(socks), "connect_errors": errors, "closed": len(times),
                         "open": len(socks) - len(times), "first_close_s": times[0] if times else None,
                         "last_close_s": times[-1] if times else None, "final": final})

    dump(False)
    while len(closed_after) < len(socks) and time.time() < deadline:
        live = [s for s in socks if s.fileno() not in closed_after]
        readable, _, _ = select.select(live, [], [], 0.2)
        for s in readable:
            try:
                while True:
                    data = s.recv(4096)
                    if not data:
                        raise ConnectionResetError
            except BlockingIOError:
                continue  # an error message came; the EOF is still to come
            except OSError:
                closed_after[s.fileno()] = round(time.time() - start, 2)
        dump(False)
    dump(True)
    for s in socks:
        s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["storm", "hold", "half"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["mesh", "bouncer"], default="mesh")
    p.add_argument("--tokens", help="file of TENANT TOKEN lines (mesh mode)")
    p.add_argument("--password", default="")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--connect-timeout", type=int, default=10)
    p.add_argument("--pid", type=int, default=0, help="storm: the pooler whose RSS and fds to sample")
    p.add_argument("--hold-file", default="")
    p.add_argument("--stage", choices=["startup", "auth"], default="startup")
    p.add_argument("--user", default="analyst")
    p.add_argument("--max-seconds", type=float, default=300)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    {"storm": storm, "hold": hold, "half": half}[args.what](args)


if __name__ == "__main__":
    main()
