#!/usr/bin/python3
"""Load for test_failover.sh: --workers clients through pgmesh, each committing numbered rows
(BEGIN; INSERT n; COMMIT, psycopg in autocommit so the three are the client's own statements),
reconnecting after any error, until --stop-file appears or --seconds pass. One more client runs
SELECT 1 against --other-dbname (a database on another cluster) all along.

Writes --out (JSON) at the end: every commit pgmesh reported (row number, epoch ms), every error
(epoch ms, where: connect or statement, SQLSTATE, message, and a FATAL the connection got between
statements, which libpq reports as a notice) and the other database's errors.
A statement or connect that takes longer than --hang-seconds is a hang: the report says so and
the exit status is 3. psycopg's connect has no SQLSTATE for a refused startup; its message
carries the server's (here pgmesh's) "FATAL:  ..." text, which the test reads instead.
"""
import argparse
import json
import os
import threading
import time

import psycopg


def now_ms():
    return int(time.time() * 1000)


class Run:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.commits = []
        self.errors = []
        self.other_ok = 0
        self.other_errors = []
        self.busy_since = {}  # worker -> ms its current call started; absent: between calls
        self.stop = False

    def done(self):
        return self.stop or os.path.exists(self.args.stop_file)

    def call(self, who, fn):
        with self.lock:
            self.busy_since[who] = now_ms()
        try:
            return fn()
        finally:
            with self.lock:
                self.busy_since.pop(who, None)

    def connect(self, who, dbname):
        a = self.args
        conn = self.call(who, lambda: psycopg.connect(
            host="127.0.0.1", port=a.port, dbname=dbname, user="analyst", password=a.password,
            sslmode="disable", connect_timeout=5, application_name=f"failover_{who}", autocommit=True,
            prepare_threshold=None))
        # libpq hands an ErrorResponse that arrives between statements to the notice processor
        # and then reports the closed connection alone: keep the FATAL to report with it.
        conn.fatal = None
        def on_notice(diag, conn=conn):
            if diag.severity_nonlocalized in ("FATAL", "PANIC"):
                conn.fatal = {"sqlstate": diag.sqlstate, "message": diag.message_primary}
        conn.add_notice_handler(on_notice)
        return conn


def error_record(where, exc, conn=None):
    diag = getattr(exc, "diag", None)
    return {"ms": now_ms(), "where": where, "sqlstate": getattr(diag, "sqlstate", None),
            "message": str(exc).strip()[:400], "fatal_between_statements": getattr(conn, "fatal", None)}


def writer(run, i):
    conn = None
    n = i * 1_000_000
    while not run.done():
        if conn is None:
            try:
                conn = run.connect(f"w{i}", "media_analytics")
            except Exception as exc:
                with run.lock:
                    run.errors.append(error_record("connect", exc))
                time.sleep(0.05)
                continue
        n += 1
        try:
            run.call(f"w{i}", lambda: (conn.execute("BEGIN"),
                                       conn.execute("INSERT INTO failover_rows (n) VALUES (%s)", (n,)),
                                       conn.execute("COMMIT")))
            with run.lock:
                run.commits.append([n, now_ms()])
        except Exception as exc:
            with run.lock:
                run.errors.append(error_record("statement", exc, conn))
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.05)
    if conn is not None:
        conn.close()


def other(run):
    conn = None
    while not run.done():
        try:
            if conn is None:
                conn = run.connect("other", run.args.other_dbname)
            run.call("other", lambda: conn.execute("SELECT 1").fetchone())
            with run.lock:
                run.other_ok += 1
        except Exception as exc:
            with run.lock:
                run.other_errors.append(error_record("other", exc, conn))
            conn = None
        time.sleep(0.02)
    if conn is not None:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--other-dbname", required=True)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=25)
    ap.add_argument("--hang-seconds", type=float, default=10)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    run = Run(args)
    threads = [threading.Thread(target=writer, args=(run, i + 1), daemon=True) for i in range(args.workers)]
    threads.append(threading.Thread(target=other, args=(run,), daemon=True))
    for t in threads:
        t.start()
    deadline = time.time() + args.seconds
    hang = None
    while any(t.is_alive() for t in threads):
        time.sleep(0.1)
        with run.lock:
            stuck = [(w, now_ms() - ms) for w, ms in run.busy_since.items() if now_ms() - ms > args.hang_seconds * 1000]
        if stuck and hang is None:
            hang = f"client {stuck[0][0]} stuck in one call for {stuck[0][1]} ms"
            break
        if time.time() > deadline:
            run.stop = True
    run.stop = True
    for t in threads:
        t.join(timeout=1)
    with run.lock:
        report = {"commits": run.commits, "errors": run.errors, "other_ok": run.other_ok,
                  "other_errors": run.other_errors, "hang": hang}
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, args.out)
    os._exit(3 if hang else 0)  # a hung thread would keep the interpreter from exiting


if __name__ == "__main__":
    main()
