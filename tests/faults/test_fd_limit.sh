#!/usr/bin/env bash
# pgmesh and PgBouncer each with their descriptor limit lowered to 256 (prlimit on the running
# process) while 400 clients connect at once and stay, under the load of four tenants. Past the
# limit, accept fails while connections stay queued: a pooler that retries at once spins a core and
# floods its log. Targets: little CPU while at the limit (pgmesh vs PgBouncer), a handful of log
# lines, the load keeps committing (or is back at it), and once the 400 close, new clients are
# accepted again.
. "$(dirname "$0")/lib.sh"
command -v prlimit > /dev/null || { echo "skipped: no prlimit"; exit 77; }

N=400 LIMIT=256 WINDOW_S=5
HZ=$(getconf CLK_TCK)
mesh_config
mesh_start
bouncer_start
: > "$TEST_DIR/hold.tokens"
for t in DE FR ES IT; do echo "$t $(mint "$t" regional_analyst)" >> "$TEST_DIR/hold.tokens"; done

# at_limit NAME mesh|bouncer PID LOG: sets NAME_in (clients logged in), NAME_ticks (CPU ticks in
# the window), NAME_win_lines (log lines in the window), NAME_lines (log lines while held),
# NAME_load (transactions in the window), NAME_back (a new client served after they close: yes/no)
at_limit() {
    local name=$1 mode=$2 pid=$3 log=$4 port args=()
    if [ "$mode" = mesh ]; then
        port=$MESH_PORT; args=(--tokens "$TEST_DIR/hold.tokens")
    else
        port=$BOUNCER_PORT; args=(--password "$BOUNCER_PASSWORD")
    fi
    load_start "$name" "$mode" --think-ms 5
    load_wait_ok "$name" 100 20
    # prlimit on another user's process needs CAP_SYS_RESOURCE, which a container may not grant;
    # as the process's own user, lowering its limits needs nothing.
    if [ "$(id -u)" = 0 ] && [ "$(stat -c %U "/proc/$pid")" != root ]; then
        runuser -u "$(stat -c %U "/proc/$pid")" -- prlimit --pid "$pid" --nofile=$LIMIT:$LIMIT
    else
        prlimit --pid "$pid" --nofile=$LIMIT:$LIMIT
    fi
    echo "== $name: $N clients against a limit of $LIMIT descriptors ($(proc_fds "$pid") open)"
    local out=$TEST_DIR/hold-$name.json hold=$TEST_DIR/hold-$name i
    touch "$hold"
    local lines0 lines1 wl0 c0 c1 ok0
    lines0=$(wc -l < "$log")
    "$PYTHON" "$FAULTS_DIR/clients.py" hold --mode "$mode" --port "$port" "${args[@]}" --n $N \
        --connect-timeout 10 --hold-file "$hold" --max-seconds 120 --out "$out" > "$TEST_DIR/hold-$name.log" 2>&1 &
    local holder=$!
    _lib_pids+=("$holder")
    for i in $(seq 1 300); do [ -s "$out" ] && break; sleep 0.1; done
    [ -s "$out" ] || fail "the $name clients did not finish connecting in 30 s: $(tail -n 5 "$TEST_DIR/hold-$name.log")"
    cat "$out"; echo
    # The window: every attempt has ended, the survivors are held and the listener is at the limit.
    wl0=$(wc -l < "$log") c0=$(proc_cpu_ticks "$pid") ok0=$(load_get "$name" ok)
    sleep $WINDOW_S
    c1=$(proc_cpu_ticks "$pid")
    printf -v "${name}_ticks" %s $((c1 - c0))
    printf -v "${name}_win_lines" %s $(($(wc -l < "$log") - wl0))
    printf -v "${name}_load" %s $(($(load_get "$name" ok) - ok0))
    printf -v "${name}_in" %s "$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["logged_in"])' "$out")"
    echo "$name at the limit: $((c1 - c0)) CPU ticks of $((WINDOW_S * HZ)), fds $(proc_fds "$pid")"
    rm -f "$hold"
    _lib_wait_exit "$holder" 20 || fail "the $name clients did not close"
    lines1=$(wc -l < "$log")
    printf -v "${name}_lines" %s $((lines1 - lines0))
    printf -v "${name}_accept_lines" %s "$(sed -n "$((lines0 + 1)),${lines1}p" "$log" | grep -ciE 'accept(\(\))? failed' || true)"
    echo "$name log while at the limit:"; sed -n "$((lines0 + 1)),${lines1}p" "$log" | grep -viE 'login attempt|closing because: client close request' | head -n 8
    local back=no psql=mesh_psql cred
    [ "$mode" = mesh ] && cred=$(mint DE regional_analyst)
    for i in $(seq 1 50); do
        if [ "$mode" = mesh ]; then
            [ "$(mesh_psql "$cred" -c 'SELECT 2' 2>/dev/null)" = 2 ] && { back=yes; break; }
        else
            [ "$(bouncer_psql -c 'SELECT 2' 2>/dev/null)" = 2 ] && { back=yes; break; }
        fi
        sleep 0.1
    done
    printf -v "${name}_back" %s "$back"
    load_wait_ok "$name" 100 20
    printf -v "${name}_iso" %s "$(load_get "$name" isolation_failures)"
    load_stop "$name"
}

at_limit mesh mesh "$MESH_PID" "$MESH_LOG"
at_limit bouncer bouncer "$BOUNCER_PID" "$BOUNCER_LOG"

C="fd limit $LIMIT, $N clients"
figure "$C" "clients logged in and held" "$mesh_in" "$bouncer_in" "-" "-"
# A busy loop would use all WINDOW_S seconds of a core; idle clients and the load need little.
max_ticks=$((WINDOW_S * HZ / 5))
verdict=pass; [ "$mesh_ticks" -lt "$max_ticks" ] || verdict=FAIL
figure "$C" "CPU ticks in ${WINDOW_S} s at the limit (of $((WINDOW_S * HZ)))" "$mesh_ticks" "$bouncer_ticks" "< $max_ticks" "$verdict"
verdict=pass; [ "$mesh_win_lines" -lt 10 ] || verdict=FAIL
figure "$C" "log lines in ${WINDOW_S} s at the limit" "$mesh_win_lines" "$bouncer_win_lines" "< 10" "$verdict"
figure "$C" "log lines from the limit to the close (logins included)" "$mesh_lines" "$bouncer_lines" "-" "-"
figure "$C" "of them 'accept failed'" "$mesh_accept_lines" "$bouncer_accept_lines" "-" "-"
verdict=pass; [ "$mesh_load" -gt 0 ] || verdict=FAIL
figure "$C" "load transactions in the ${WINDOW_S} s" "$mesh_load" "$bouncer_load" "> 0" "$verdict"
verdict=pass; [ "$mesh_back" = yes ] || verdict=FAIL
figure "$C" "new client accepted after the close" "$mesh_back" "$bouncer_back" "yes" "$verdict"

[ "$mesh_ticks" -lt "$max_ticks" ] || fail "pgmesh used $mesh_ticks CPU ticks in $WINDOW_S s at the descriptor limit"
[ "$mesh_win_lines" -lt 10 ] || fail "pgmesh wrote $mesh_win_lines log lines in $WINDOW_S s at the descriptor limit"
[ "$mesh_load" -gt 0 ] || fail "the load did not commit through pgmesh while it was at the descriptor limit"
[ "$mesh_back" = yes ] || fail "pgmesh accepted no new client after the $N closed"
grep -q 'accept failed: Too many open files' "$MESH_LOG" || fail "pgmesh never reached the limit: the case tested nothing"
wait_log 'accepting new connections again' 5
mesh_stop
echo ok
