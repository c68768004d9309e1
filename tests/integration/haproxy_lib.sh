# HAProxy 2.6 in front of pgmesh, for the tests that source it after lib.sh (test_proxy_protocol.sh,
# test_haproxy_peers.sh). HAProxy runs in the foreground as the test's child, so lib.sh's cleanup
# stops it with the pgmesh instances however the test ends.
#
#   haproxy_defaults             prints the config's defaults section: TCP mode, bounded timeouts
#   haproxy_start CFG PORT...    checks CFG, starts HAProxy on it (log in $TEST_DIR/haproxy.log),
#                                waits up to 5 s for every PORT (its frontends) to listen; sets HA_PID
#   haproxy_stop                 SIGTERM, waits up to 10 s for it to exit
#
# Env: HAPROXY (default haproxy, from PATH).

HAPROXY=${HAPROXY:-haproxy}
HA_PID=
command -v "$HAPROXY" > /dev/null || fail "haproxy not found (make deps installs it)"

haproxy_defaults() {
    cat <<'CFG'
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
CFG
}

haproxy_start() {
    local cfg=$1 port i up
    shift
    "$HAPROXY" -c -q -f "$cfg" || fail "haproxy rejected its configuration $cfg"
    # -db: in the foreground, ours to stop.
    "$HAPROXY" -f "$cfg" -db > "$TEST_DIR/haproxy.log" 2>&1 < /dev/null &
    HA_PID=$!
    _lib_pids+=("$HA_PID")
    for i in $(seq 1 50); do
        up=1
        for port in "$@"; do
            ss -Htln "sport = :$port" 2>/dev/null | grep -q . || up=0
        done
        [ "$up" = 1 ] && return 0
        kill -0 "$HA_PID" 2>/dev/null || { cat "$TEST_DIR/haproxy.log" >&2; fail "haproxy exited"; }
        sleep 0.1
    done
    cat "$TEST_DIR/haproxy.log" >&2
    fail "haproxy not listening on $* after 5 s"
}

haproxy_stop() {
    [ -n "$HA_PID" ] || return 0
    kill -TERM "$HA_PID" 2>/dev/null || true
    _lib_wait_exit "$HA_PID" 10 || fail "haproxy (pid $HA_PID) did not exit within 10 s of SIGTERM"
    wait "$HA_PID" 2>/dev/null || true
    HA_PID=
}
