#!/usr/bin/python3
"""Background load for the fault suite: a few threads per tenant run short transactions that read
the tenant's claim and its rows under the RLS policy, through pgmesh (the token is the password)
or through PgBouncer (the transaction sets the claim itself). A thread that gets an error counts it,
drops its connection and reconnects after a short pause, so the load rides through a fault the way
a pooled application does.

Every 0.2 s it writes a JSON summary to --out (atomically): ok, errors, isolation failures (a
transaction that saw another tenant's claim or row count), errors by SQLSTATE, the last error, and
a per-second timeline of [second, ok, errors]. It stops when --stop-file appears or after
--max-seconds, whichever comes first.
"""
import argparse
import json
import os
import threading
import time

import psycopg

# Rows of core.fct_playback_sessions per tenant in demo/mesh.sql.
EXPECTED_ROWS = {"DE": 3, "FR": 2, "ES": 1, "IT": 1}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = 0
        self.isolation = 0
        self.by_state = {}
        self.last_error = ""
        self.last_ok_at = 0.0
        self.timeline = {}
        self.start = time.time()

    def bucket(self, now):
        return self.timeline.setdefault(int(now - self.start), [0, 0])

    def record_ok(self):
        now = time.time()
        with self.lock:
            self.ok += 1
            self.last_ok_at = now
            self.bucket(now)[0] += 1

    def record_error(self, exc):
        now = time.time()
        state = getattr(getattr(exc, "diag", None), "sqlstate", None) or type(exc).__name__
        with self.lock:
            self.errors += 1
            self.by_state[state] = self.by_state.get(state, 0) + 1
            self.last_error = f"{state}: {str(exc).strip()[:200]}"
            self.bucket(now)[1] += 1

    def record_isolation(self, what):
        with self.lock:
            self.isolation += 1
            self.last_error = "isolation: " + what

    def dump(self, path):
        with self.lock:
            doc = {
                "ok": self.ok, "errors": self.errors, "isolation_failures": self.isolation,
                "errors_by_sqlstate": self.by_state, "last_error": self.last_error,
                "start": self.start, "last_ok_at": self.last_ok_at,
                "timeline": sorted([s, v[0], v[1]] for s, v in self.timeline.items()),
            }
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)


def worker(args, tenant, password, user, stats, stop):
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = psycopg.connect(host=args.host, port=args.port, dbname=args.dbname, user=user,
                                       password=password, sslmode="disable", connect_timeout=5,
                                       application_name="fault_load",
                                       # PgBouncer 1.18 cannot pool named statements
                                       prepare_threshold=None if args.mode == "bouncer" else 5)
            with conn.transaction():
                if args.mode == "bouncer":
                    conn.execute("SELECT set_config('request.jwt.claim.tenant', %s, true)", (tenant,))
                claim, rows = conn.execute(
                    "SELECT current_setting('request.jwt.claim.tenant', true), count(*) "
                    "FROM core.fct_playback_sessions").fetchone()
            if claim != tenant or rows != EXPECTED_ROWS[tenant]:
                stats.record_isolation(f"{tenant} saw claim {claim!r} and {rows} rows")
            else:
                stats.record_ok()
            if args.think_ms:
                stop.wait(args.think_ms / 1000)
        except Exception as exc:  # any failure: count it, reconnect, go on
            stats.record_error(exc)
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
            stop.wait(0.05)
    if conn is not None:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dbname", default="media_analytics")
    p.add_argument("--mode", choices=["mesh", "bouncer"], default="mesh")
    p.add_argument("--tokens", help="file of TENANT TOKEN lines (mesh mode)")
    p.add_argument("--user", default="analyst")
    p.add_argument("--password", default="", help="bouncer mode: the server role's password")
    p.add_argument("--tenants", default="DE,FR,ES,IT")
    p.add_argument("--threads-per-tenant", type=int, default=2)
    p.add_argument("--think-ms", type=float, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--max-seconds", type=float, default=900)
    args = p.parse_args()

    tokens = {}
    if args.tokens:
        with open(args.tokens) as f:
            for line in f:
                if line.strip():
                    t, tok = line.split()
                    tokens[t] = tok
    stats = Stats()
    stop = threading.Event()
    threads = []
    for tenant in args.tenants.split(","):
        password = tokens[tenant] if args.mode == "mesh" else args.password
        for _ in range(args.threads_per_tenant):
            th = threading.Thread(target=worker, args=(args, tenant, password, args.user, stats, stop),
                                  daemon=True)
            th.start()
            threads.append(th)
    deadline = time.time() + args.max_seconds
    while time.time() < deadline and not os.path.exists(args.stop_file):
        stats.dump(args.out)
        time.sleep(0.2)
    stop.set()
    for th in threads:
        th.join(timeout=10)
    stats.dump(args.out)


if __name__ == "__main__":
    main()
