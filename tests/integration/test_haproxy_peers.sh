#!/usr/bin/env bash
# Three pgmesh instances (peer_id 1, 2, 3, one peers line; instance 3 with workers = 2) behind one
# HAProxy 2.6 frontend, balance roundrobin, send-proxy-v2 from 127.0.0.2. Clients of DE, FR and the
# audit role each see their own rows, and their logins spread over all three instances; a client
# from 127.0.0.7 is logged as 127.0.0.7 by whichever instance served it; a psycopg cancel, which
# roundrobin sends to another instance than the query's, is passed to the peer named in the key
# and ends pg_sleep with 57014 every time; a cancel naming an unknown peer is logged and ignored;
# after a reload gives every peers line an entry pointing back at instance 1, a cancel for it is
# passed on three times and then dropped with a warning (the hop count in the key).
. "$(dirname "$0")/lib.sh"
once_without_extension "nothing it checks depends on it"
. "$(dirname "$0")/haproxy_lib.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "$PYTHON cannot import psycopg (make deps installs python3-psycopg)"
HELPER=$(dirname "$0")/proxy_client.py
N=3

# Instance i (1..N): its ini, log, port and pid; use_mesh points lib.sh's helpers at it.
mapfile -t ports < <(free_ports $((N + 1)))
[ "${#ports[@]}" = $((N + 1)) ] || fail "free_ports gave ${ports[*]}"
HA_PORT=${ports[$N]}
declare -a M_INI M_LOG M_PORT M_PID
peers=
for i in $(seq 1 $N); do
    M_INI[i]=$TEST_DIR/mesh$i.ini
    M_LOG[i]=$TEST_DIR/mesh$i.log
    M_PORT[i]=${ports[i - 1]}
    peers+="${peers:+, }$i=127.0.0.1:${M_PORT[i]}"
done
use_mesh() {
    MESH_INI=${M_INI[$1]} MESH_LOG=${M_LOG[$1]} MESH_PORT=${M_PORT[$1]} MESH_PID=${M_PID[$1]:-}
}

# One mesh_config (one JWT secret for all), then each instance's copy of it.
MESH_INI=$TEST_DIR/base.ini
mesh_config
for i in $(seq 1 $N); do
    cp "$TEST_DIR/base.ini" "${M_INI[i]}"
    use_mesh "$i"
    ini_set pgmesh listen_port "${M_PORT[i]}"
    ini_set pgmesh peer_id "$i"
    ini_set pgmesh peers "$peers"
    ini_set pgmesh proxy_protocol on
    ini_set pgmesh proxy_protocol_trusted 127.0.0.2/32
    # A cancel that reaches instance 3 may then also cross to its other worker.
    [ "$i" != 3 ] || ini_set pgmesh workers 2
    mesh_start
    # mesh_start takes another port when someone took this one meanwhile: the peers line would lie.
    [ "$MESH_PORT" = "${M_PORT[i]}" ] || fail "instance $i: port ${M_PORT[i]} was taken before it started"
    M_PID[i]=$MESH_PID
done
use_mesh 3
wait_log "worker 1 started"

{
    haproxy_defaults
    echo "frontend fe"
    echo "    bind 127.0.0.1:$HA_PORT"
    echo "    default_backend meshes"
    echo "backend meshes"
    echo "    balance roundrobin"
    for i in $(seq 1 $N); do
        echo "    server mesh$i 127.0.0.1:${M_PORT[i]} send-proxy-v2 source 127.0.0.2"
    done
} > "$TEST_DIR/haproxy.cfg"
haproxy_start "$TEST_DIR/haproxy.cfg" "$HA_PORT"

# all_logs: the instances' logs, one after the other.
all_logs() { cat "${M_LOG[@]}"; }

echo "== DE, FR and the audit role through HAProxy: each its own rows"
q_counts='SELECT country_code, count(*) FROM core.fct_playback_sessions GROUP BY 1 ORDER BY 1'
declare -A want=([DE]="DE|3" [FR]="FR|2" [HQ]=$'DE|3\nES|1\nFR|2\nIT|1')
# Each round starts one tenant later, so that roundrobin gives every instance every tenant; a sub
# per login keeps the log's repeat limiter from folding the login lines together.
order=(DE FR HQ)
for round in 0 1 2; do
    for k in 0 1 2; do
        t=${order[(round + k) % 3]}
        role=regional_analyst
        [ "$t" != HQ ] || role=global_corporate_audit
        assert_eq "${want[$t]}" "$(mesh_psql "$(mint "$t" "$role" --sub "matrix-$round$k")" -p "$HA_PORT" -c "$q_counts")" \
            "$t rows (round $round)"
    done
done
for i in $(seq 1 $N); do
    tenants=$(grep -oE 'login: role=[a-z_]+ tenant=[A-Z]+ sub=matrix-' "${M_LOG[i]}" |
        sed -E 's/.*tenant=([A-Z]+).*/\1/' | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}' || true)
    [ -n "$tenants" ] || fail "instance $i logged no login of the 9 through HAProxy"
    echo "instance $i: $tenants"
done
assert_eq 9 "$(all_logs | grep -c ' login: .* sub=matrix-')" "login lines of the 9 clients"

echo "== the client's address, whichever instance serves it"
for k in $(seq 1 $N); do
    out=$(TOKEN=$(mint FR regional_analyst --sub "addr-$k") SRC=127.0.0.7 \
        timeout -k 5 30 "$PYTHON" "$HELPER" "$HA_PORT" "SELECT DISTINCT country_code FROM core.fct_playback_sessions") ||
        fail "client $k from 127.0.0.7: $out"
    assert_eq "row=FR" "$(grep '^row=' <<< "$out")" "client $k from 127.0.0.7: rows"
    cport=$(sed -n 's/^local_port=//p' <<< "$out")
    line="C-[0-9]+ media_analytics/FR@127\\.0\\.0\\.7:$cport: login: role=regional_analyst tenant=FR sub=addr-$k "
    served=()
    for i in $(seq 1 $N); do
        ! grep -qE -- "$line" "${M_LOG[i]}" || served+=("$i")
    done
    [ "${#served[@]}" = 1 ] || fail "client $k from 127.0.0.7:$cport: login line in instances [${served[*]}], not one"
    echo "client $k (127.0.0.7:$cport): instance ${served[0]}"
done
assert_not_contains "$(all_logs | grep 'login:')" "@127.0.0.2:" "login lines naming HAProxy's address"

de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
echo "== a cancel that HAProxy sends to another instance is passed to the query's"
out=$(HA_DSN=$(MESH_PORT=$HA_PORT mesh_dsn "$de") "$PYTHON" - <<'PY'
import os, threading, time, psycopg
# Roundrobin sends the cancel's connection to the instance after the query's: with three, four
# attempts run a query on every instance (1, 3, 2, 1) and cancel it from another one.
for attempt in range(4):
    with psycopg.connect(os.environ["HA_DSN"], autocommit=True) as c:
        pid = c.info.backend_pid
        t = threading.Timer(0.5, c.cancel)
        t.start()
        t0 = time.monotonic()
        try:
            c.execute("SELECT pg_sleep(20)")
            raise SystemExit("attempt %d: pg_sleep(20) was not cancelled" % attempt)
        except psycopg.errors.QueryCanceled as e:
            took = time.monotonic() - t0
            assert e.sqlstate == "57014", e.sqlstate
            assert took < 5, "attempt %d: the cancel took %.1f s" % (attempt, took)
        t.join()
        print("cancelled peer=%d worker=%d after %.2f s" % (pid >> 24, (pid >> 20) & 0xF, took))
PY
)
echo "$out"
assert_eq 4 "$(grep -c '^cancelled ' <<< "$out")" "cancelled attempts"
passed=$(all_logs | grep -oE 'cancel request passed to peer [0-9]+' | sort -u || true)
[ -n "$passed" ] || fail "no cancel request was passed between peers"
echo "$passed"
# A pass names an instance a query ran on, never one not in the peers line.
for p in $(awk '{print $NF}' <<< "$passed"); do
    assert_contains "$out" "peer=$p " "a query on the peer a cancel was passed to"
done
assert_not_contains "$(all_logs)" "could not pass a cancel request" "the instances' logs"
echo "passed to worker (instance 3): $(grep -c 'cancel request passed to worker' "${M_LOG[3]}" || true)"

echo "== a cancel naming an unknown peer is logged and ignored"
"$PYTHON" - "$HA_PORT" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(struct.pack("!iiII", 16, 80877102, 99 << 24, 12345))
s.settimeout(5)
assert s.recv(1) == b"", "the instance answered a cancel request"
PY
for i in $(seq 1 50); do
    all_logs | grep -q 'cancel request for peer 99 ignored: no such peer in peers' && break
    sleep 0.1
done
all_logs | grep -q 'cancel request for peer 99 ignored: no such peer in peers' ||
    fail "no line about the cancel request for peer 99"

echo "== peers lines that disagree: a cancel is passed on three times at most"
# Peer 4 "is" at instance 1's own address, as a stale or mistyped line would have it: without the
# hop count in the key, one packet would keep instance 1 passing it to itself.
for i in $(seq 1 $N); do
    use_mesh "$i"
    ini_set pgmesh peers "$peers, 4=127.0.0.1:${M_PORT[1]}"
    before=$(grep -c 'config reload: .* applied' "$MESH_LOG" || true)
    kill -HUP "$MESH_PID"
    want=$((before + 1))
    [ "$i" != 3 ] || want=$((before + 2)) # one line per worker
    for _ in $(seq 1 50); do
        [ "$(grep -c 'config reload: .* applied' "$MESH_LOG" || true)" -ge "$want" ] && break
        sleep 0.1
    done
    assert_eq "$want" "$(grep -c 'config reload: .* applied' "$MESH_LOG" || true)" "instance $i: reload lines"
done
"$PYTHON" - "${M_PORT[2]}" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(struct.pack("!iiII", 16, 80877102, 4 << 24, 0x12340003))  # three hops left, as given out
PY
use_mesh 1
wait_log "cancel request for peer 4 ignored: it was passed between peers 3 times already" 5
sleep 0.3 # time for a fourth pass, were there one
n=$(all_logs | grep -c 'cancel request passed to peer 4' || true)
assert_eq 3 "$n" "passes of the cancel for peer 4 (2 -> 1, then 1 -> 1 twice)"

echo "== every instance still serves; then all stop"
for i in $(seq 1 $N); do
    use_mesh "$i"
    assert_eq "FR|2" "$(mesh_psql "$fr" -c "$q_counts")" "instance $i, directly"
done
assert_eq "DE|3" "$(mesh_psql "$de" -p "$HA_PORT" -c "$q_counts")" "through HAProxy at the end"
workers=$(pgrep -P "${M_PID[3]}" || true)
[ "$(wc -w <<< "$workers")" = 2 ] || fail "instance 3: workers [$workers], not 2"
haproxy_stop
for i in $(seq 1 $N); do
    use_mesh "$i"
    mesh_stop
done
for pid in "${M_PID[@]}" $workers; do
    ! kill -0 "$pid" 2>/dev/null || fail "process $pid still running after the stop"
done
