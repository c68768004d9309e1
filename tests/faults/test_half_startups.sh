#!/usr/bin/env bash
# 200 connections each send the first 8 bytes of a startup packet (its length and the protocol
# version) and stall, at pgmesh and at PgBouncer, under the load of four tenants: slowloris at the
# login stage. Each stalled connection holds a descriptor and a client slot until the pooler gives
# up on it. Targets: other clients keep working meanwhile (the load and a fresh psql), every stalled
# connection is closed by the login timeout (client_login_timeout in both, 10 s here; 60 s is
# the default of both),
# and the pooler's descriptors are back to where they were. Beside them, 100 connections send a
# whole startup packet and stall at the password request: PgBouncer drops a partial startup packet
# at once ("client sent partial pkt in startup phase"), so only these show its login timeout.
. "$(dirname "$0")/lib.sh"

N=200 N_AUTH=100 LOGIN_TIMEOUT_S=10 SLACK_S=5
mesh_config
ini_set pgmesh client_login_timeout "${LOGIN_TIMEOUT_S}s"
mesh_start
bouncer_start client_login_timeout=$LOGIN_TIMEOUT_S
load_start mesh mesh --think-ms 5
load_start bouncer bouncer --think-ms 5
load_wait_ok mesh 100 20
load_wait_ok bouncer 100 20
mesh_fds0=$(proc_fds "$MESH_PID") bouncer_fds0=$(proc_fds "$BOUNCER_PID")

echo "== $N half startup packets and $N_AUTH stalled logins at each"
half() { # NAME PORT N [clients.py args]
    local name=$1 port=$2 n=$3
    shift 3
    "$PYTHON" "$FAULTS_DIR/clients.py" half --port "$port" --n "$n" --max-seconds $((LOGIN_TIMEOUT_S + 30)) \
        --out "$TEST_DIR/half-$name.json" "$@" > "$TEST_DIR/half-$name.log" 2>&1 &
    _lib_pids+=("$!")
}
half mesh "$MESH_PORT" $N
half bouncer "$BOUNCER_PORT" $N
half mesh_auth "$MESH_PORT" $N_AUTH --stage auth --user analyst
half bouncer_auth "$BOUNCER_PORT" $N_AUTH --stage auth --user marketing_domain_role
jget() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TEST_DIR/half-$1.json" "$2"; }
for name in mesh bouncer mesh_auth bouncer_auth; do
    for _ in $(seq 1 100); do [ -s "$TEST_DIR/half-$name.json" ] && break; sleep 0.1; done
    [ -s "$TEST_DIR/half-$name.json" ] || fail "the $name half startups did not start: $(tail -n 5 "$TEST_DIR/half-$name.log")"
    n=$N; case $name in *_auth) n=$N_AUTH ;; esac
    assert_eq $n "$(jget $name opened)" "connections opened ($name)"
done
sleep 1
mesh_fds_mid=$(proc_fds "$MESH_PID") bouncer_fds_mid=$(proc_fds "$BOUNCER_PID")
echo "fds with the stalled connections: pgmesh $mesh_fds0 -> $mesh_fds_mid, PgBouncer $bouncer_fds0 -> $bouncer_fds_mid"

# Meanwhile: the load goes on and a new client logs in and is served at once.
t0=$(now_ms)
assert_eq 3 "$(mesh_psql "$(mint DE regional_analyst)" -c 'SELECT count(*) FROM core.fct_playback_sessions')" "a new pgmesh client beside the stalled ones"
mesh_psql_ms=$(($(now_ms) - t0))
t0=$(now_ms)
assert_eq 1 "$(bouncer_psql -c 'SELECT 1')" "a new PgBouncer client beside the stalled ones"
bouncer_psql_ms=$(($(now_ms) - t0))
load_wait_ok mesh 100 10
load_wait_ok bouncer 100 10
mesh_ok0=$(load_get mesh ok) bouncer_ok0=$(load_get bouncer ok)

echo "== waiting for the login timeout"
for name in mesh bouncer mesh_auth bouncer_auth; do
    for _ in $(seq 1 $(((LOGIN_TIMEOUT_S + 40) * 10))); do
        [ "$(jget $name final)" = True ] && break
        sleep 0.1
    done
    [ "$(jget $name final)" = True ] || fail "the $name half startups did not end"
    cat "$TEST_DIR/half-$name.json"; echo
done
mesh_load=$(($(load_get mesh ok) - mesh_ok0)) bouncer_load=$(($(load_get bouncer ok) - bouncer_ok0))
settle() { # PID START
    local n
    for _ in $(seq 1 50); do n=$(proc_fds "$1"); [ "$n" -le "$2" ] && break; sleep 0.1; done
    echo "$n"
}
mesh_fds1=$(settle "$MESH_PID" "$mesh_fds0") bouncer_fds1=$(settle "$BOUNCER_PID" "$bouncer_fds0")
mesh_closed=$(jget mesh closed) bouncer_closed=$(jget bouncer closed)
mesh_last=$(jget mesh last_close_s) bouncer_last=$(jget bouncer last_close_s)
mesh_first=$(jget mesh first_close_s) bouncer_first=$(jget bouncer first_close_s)
mesh_auth_closed=$(jget mesh_auth closed) bouncer_auth_closed=$(jget bouncer_auth closed)
mesh_auth_last=$(jget mesh_auth last_close_s) bouncer_auth_last=$(jget bouncer_auth last_close_s)
mesh_auth_first=$(jget mesh_auth first_close_s) bouncer_auth_first=$(jget bouncer_auth first_close_s)
mesh_log_lines=$(wc -l < "$MESH_LOG") bouncer_log_lines=$(wc -l < "$BOUNCER_LOG")
load_stop mesh
load_stop bouncer

C="$N half startup packets"
figure "$C" "new psql served meanwhile (ms)" "$mesh_psql_ms" "$bouncer_psql_ms" "-" "-"
verdict=pass; [ "$mesh_load" -gt 0 ] || verdict=FAIL
figure "$C" "load transactions while they stalled" "$mesh_load" "$bouncer_load" "> 0" "$verdict"
verdict=pass; [ "$mesh_closed" = $N ] || verdict=FAIL
figure "$C" "half startups closed by the pooler" "$mesh_closed" "$bouncer_closed" "$N" "$verdict"
limit=$((LOGIN_TIMEOUT_S + SLACK_S))
within() { awk -v l="$1" -v m="$limit" 'BEGIN { exit !(l != "None" && l <= m) }'; }
verdict=pass; within "$mesh_last" || verdict=FAIL
figure "$C" "half startups: first / last closed after (s)" "$mesh_first / $mesh_last" "$bouncer_first / $bouncer_last" "<= $limit (login timeout $LOGIN_TIMEOUT_S s)" "$verdict"
verdict=pass; [ "$mesh_auth_closed" = $N_AUTH ] && within "$mesh_auth_last" || verdict=FAIL
figure "$C" "$N_AUTH stalled at the password: closed, first / last after (s)" "$mesh_auth_closed, $mesh_auth_first / $mesh_auth_last" \
    "$bouncer_auth_closed, $bouncer_auth_first / $bouncer_auth_last" "$N_AUTH, <= $limit" "$verdict"
figure "$C" "log lines in the whole case" "$mesh_log_lines" "$bouncer_log_lines" "-" "-"
verdict=pass; [ "$mesh_fds1" -le "$mesh_fds0" ] || verdict=FAIL
figure "$C" "fds before -> stalled -> after" "$mesh_fds0 -> $mesh_fds_mid -> $mesh_fds1" \
    "$bouncer_fds0 -> $bouncer_fds_mid -> $bouncer_fds1" "back to start" "$verdict"

[ "$mesh_load" -gt 0 ] || fail "the load did not commit through pgmesh while the startups stalled"
[ "$mesh_closed" = $N ] || fail "pgmesh closed $mesh_closed of the $N stalled connections"
within "$mesh_last" || fail "pgmesh closed the last half startup after $mesh_last s"
[ "$mesh_auth_closed" = $N_AUTH ] || fail "pgmesh closed $mesh_auth_closed of the $N_AUTH logins stalled at the password"
within "$mesh_auth_last" || fail "pgmesh closed the last login stalled at the password after $mesh_auth_last s"
[ "$mesh_fds1" -le "$mesh_fds0" ] || fail "pgmesh has $mesh_fds1 fds after, $mesh_fds0 before"
mesh_stop
echo ok
