#!/usr/bin/env bash
# Out of file descriptors, pgmesh pauses accepting instead of retrying accept in a busy loop: with
# its limit lowered to 64 (prlimit) and 150 connections opened at it, its CPU use stays low and it
# logs the pause once; when the connections close, new clients are accepted again.
. "$(dirname "$0")/lib.sh"
once_without_extension "accepting under a descriptor limit is the same with or without it"
command -v prlimit > /dev/null || { echo "skipped: no prlimit"; exit 77; }

mesh_config
mesh_start
tok=$(mint acme regional_analyst)
assert_eq 1 "$(mesh_psql "$tok" -c 'SELECT 1')" "a query before the limit"
prlimit --pid "$MESH_PID" --nofile=64:64

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$MESH_PID/stat"; }

echo "== 150 connections against a limit of 64 descriptors"
touch "$TEST_DIR/hold"
python3 - "$MESH_PORT" "$TEST_DIR/hold" > "$TEST_DIR/holder.out" 2>&1 <<'PY' &
import os, socket, sys, time
socks = []
for i in range(150):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
        socks.append(s)
    except OSError as e:
        print("connect", i, e)
print(len(socks), "connected", flush=True)
while os.path.exists(sys.argv[2]):
    time.sleep(0.1)
for s in socks:
    s.close()
print("closed", flush=True)
PY
holder=$!
for _ in $(seq 1 100); do grep -q connected "$TEST_DIR/holder.out" && break; sleep 0.1; done
grep -q connected "$TEST_DIR/holder.out" || fail "the connections were not opened: $(cat "$TEST_DIR/holder.out")"
wait_log 'accept failed: Too many open files' 10
sleep 0.5
lines0=$(wc -l < "$MESH_LOG")
c0=$(cpu_ticks)
sleep 3
c1=$(cpu_ticks)
lines=$(($(wc -l < "$MESH_LOG") - lines0))
hz=$(getconf CLK_TCK)
echo "at the limit: $((c1 - c0)) CPU ticks of $((3 * hz)) in 3 s, $lines log lines"
grep -E 'accept' "$MESH_LOG" | sed -n '1,5p'
# A busy loop uses the whole 3 s; pausing uses next to nothing.
[ $((c1 - c0)) -lt $((3 * hz / 5)) ] || fail "pgmesh used $((c1 - c0)) CPU ticks in 3 s at the descriptor limit"
[ "$lines" -lt 10 ] || fail "$lines log lines in 3 s at the descriptor limit"
assert_eq 1 "$(grep -c 'accept failed: Too many open files' "$MESH_LOG")" "pause lines"

echo "== the connections close: new clients are accepted"
rm -f "$TEST_DIR/hold"
wait "$holder"
ok=0
for _ in $(seq 1 50); do
    if [ "$(mesh_psql "$tok" -c 'SELECT 2' 2>/dev/null)" = 2 ]; then ok=1; break; fi
    sleep 0.1
done
[ "$ok" = 1 ] || fail "no new client accepted after the connections closed"
wait_log 'accepting new connections again' 5
mesh_stop
echo ok
