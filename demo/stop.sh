#!/usr/bin/env bash
# Stops what demo/demo.sh left running: pgmesh (by its pid file) and the demo PostgreSQL.
# Safe to run when nothing runs. --quiet: say nothing when there was nothing to stop.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/demo/run
. "$ROOT/scripts/pgcluster.sh"
quiet=0
[ "${1:-}" = --quiet ] && quiet=1

if [ -f "$RUN/pgmesh.pid" ]; then
    pid=$(cat "$RUN/pgmesh.pid")
    # Only if that pid is still a pgmesh: pids are reused.
    if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "pgmesh -c $RUN/pgmesh.ini"; then
        kill -TERM "$pid"
        for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "demo/stop.sh: pgmesh (pid $pid) still running 10 s after SIGTERM; killing it" >&2
            kill -KILL "$pid"
        fi
        echo "stopped pgmesh (pid $pid)"
    fi
    rm -f "$RUN/pgmesh.pid"
fi
if [ -f "$RUN/pg/data/postmaster.pid" ]; then
    pgcluster_stop "$RUN/pg"
    echo "stopped PostgreSQL ($RUN/pg)"
elif [ "$quiet" = 0 ]; then
    echo "no demo PostgreSQL running"
fi
exit 0
