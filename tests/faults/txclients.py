#!/usr/bin/python3
"""N clients of one tenant, each on its own connection (psycopg, autocommit, so BEGIN and COMMIT
are the client's own statements): connect, run --before, wait for --go-file, run --after. A case
uses it to have several clients at a known point (connected, or inside a transaction) when it
injects its fault, and to time what happens to each of them afterwards.

Writes --out (atomically, every 0.1 s and at the end): for each client its stage (connecting,
ready: --before done and waiting for go, sent: --after under way, done, error), when it reached
ready and done (epoch ms), and its error's SQLSTATE and message. Exits after all clients are done
or failed, or after --max-seconds.
"""
import argparse
import json
import os
import threading
import time

import psycopg


def client(args, i, state, lock):
    def set_(**kw):
        with lock:
            state[i].update(kw)

    try:
        conn = psycopg.connect(host="127.0.0.1", port=args.port, dbname="media_analytics", user=args.user,
                               password=args.password, sslmode="disable", connect_timeout=10,
                               application_name=f"txclient_{i}", autocommit=True, prepare_threshold=None)
    except Exception as exc:
        set_(stage="error", error=f"connect: {exc}".strip()[:300])
        return
    try:
        for sql in args.before:
            conn.execute(sql.replace("{i}", str(i)))
        set_(stage="ready", ready_ms=int(time.time() * 1000))
        deadline = time.time() + args.max_seconds
        while not os.path.exists(args.go_file) and time.time() < deadline:
            time.sleep(0.02)
        set_(stage="sent", sent_ms=int(time.time() * 1000))
        for sql in args.after:
            conn.execute(sql.replace("{i}", str(i)))
        set_(stage="done", done_ms=int(time.time() * 1000))
    except Exception as exc:
        set_(stage="error", error_ms=int(time.time() * 1000),
             sqlstate=getattr(getattr(exc, "diag", None), "sqlstate", None), error=str(exc).strip()[:300])
    finally:
        try:
            conn.close()
        except Exception:
            pass


def dump(path, state, lock):
    with lock:
        doc = [dict(s) for s in state]
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f)
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="analyst")
    p.add_argument("--password", required=True, help="the token (pgmesh) or the role's password")
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--before", action="append", default=[], help="SQL before go; {i} is the client's number")
    p.add_argument("--after", action="append", default=[], help="SQL after go")
    p.add_argument("--go-file", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-seconds", type=float, default=60)
    args = p.parse_args()
    state = [{"stage": "connecting"} for _ in range(args.n)]
    lock = threading.Lock()
    threads = [threading.Thread(target=client, args=(args, i, state, lock), daemon=True) for i in range(args.n)]
    for t in threads:
        t.start()
    deadline = time.time() + args.max_seconds + 10
    while any(t.is_alive() for t in threads) and time.time() < deadline:
        dump(args.out, state, lock)
        time.sleep(0.1)
    dump(args.out, state, lock)


if __name__ == "__main__":
    main()
