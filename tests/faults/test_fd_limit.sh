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
declare -A R=() # results, by pooler: R[mesh_ok], R[bouncer_ok], ...
HZ=$(getconf CLK_TCK)
mesh_config
mesh_start
bouncer_start
: > "$TEST_DIR/hold.tokens"
for t in DE FR ES IT; do echo "$t $(mint "$t" regional_analyst)" >> "$TEST_DIR/hold.tokens"; done

# at_limit NAME mesh|bouncer PID LOG: sets R[NAME_in] (clients logged in), R[NAME_ticks] (CPU ticks
# in the window), R[NAME_win_lines] (log lines in the window), R[NAME_lines] (log lines while held),
# R[NAME_load] (transactions in the window), R[NAME_back] (a new client served after the close)
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
    local out=$TEST_DIR/hold-$name.json hold=$TEST_DIR/hold-$name
    touch "$hold"
    local lines0 lines1 wl0 c0 c1 ok0
    lines0=$(wc -l < "$log")
    "$PYTHON" "$FAULTS_DIR/clients.py" hold --mode "$mode" --port "$port" "${args[@]}" --n $N \
        --connect-timeout 10 --hold-file "$hold" --max-seconds 120 --out "$out" > "$TEST_DIR/hold-$name.log" 2>&1 &
    local holder=$!
    _lib_pids+=("$holder")
    for _ in $(seq 1 300); do [ -s "$out" ] && break; sleep 0.1; done
    [ -s "$out" ] || fail "the $name clients did not finish connecting in 30 s: $(tail -n 5 "$TEST_DIR/hold-$name.log")"
    cat "$out"; echo
    # The window: every attempt has ended, the survivors are held and the listener is at the limit.
    wl0=$(wc -l < "$log") c0=$(proc_cpu_ticks "$pid") ok0=$(load_get "$name" ok)
    sleep $WINDOW_S
    c1=$(proc_cpu_ticks "$pid")
    R[${name}_ticks]=$((c1 - c0))
    R[${name}_win_lines]=$(($(wc -l < "$log") - wl0))
    R[${name}_load]=$(($(load_get "$name" ok) - ok0))
    R[${name}_in]="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["logged_in"])' "$out")"
    echo "$name at the limit: $((c1 - c0)) CPU ticks of $((WINDOW_S * HZ)), fds $(proc_fds "$pid")"
    rm -f "$hold"
    _lib_wait_exit "$holder" 20 || fail "the $name clients did not close"
    lines1=$(wc -l < "$log")
    R[${name}_lines]=$((lines1 - lines0))
    R[${name}_accept_lines]="$(sed -n "$((lines0 + 1)),${lines1}p" "$log" | grep -ciE 'accept(\(\))? failed' || true)"
    echo "$name log while at the limit:"; sed -n "$((lines0 + 1)),${lines1}p" "$log" | grep -viE 'login attempt|closing because: client close request' | head -n 8
    local back=no cred
    [ "$mode" = mesh ] && cred=$(mint DE regional_analyst)
    for _ in $(seq 1 50); do
        if [ "$mode" = mesh ]; then
            [ "$(mesh_psql "$cred" -c 'SELECT 2' 2>/dev/null)" = 2 ] && { back=yes; break; }
        else
            [ "$(bouncer_psql -c 'SELECT 2' 2>/dev/null)" = 2 ] && { back=yes; break; }
        fi
        sleep 0.1
    done
    R[${name}_back]="$back"
    load_wait_ok "$name" 100 20
    R[${name}_iso]="$(load_get "$name" isolation_failures)"
    load_stop "$name"
}

at_limit mesh mesh "$MESH_PID" "$MESH_LOG"
at_limit bouncer bouncer "$BOUNCER_PID" "$BOUNCER_LOG"

C="fd limit $LIMIT, $N clients"
figure "$C" "clients logged in and held" "${R[mesh_in]}" "${R[bouncer_in]}" "-" "-"
# A busy loop would use all WINDOW_S seconds of a core; idle clients and the load need little.
max_ticks=$((WINDOW_S * HZ / 5))
verdict=pass; [ "${R[mesh_ticks]}" -lt "$max_ticks" ] || verdict=FAIL
figure "$C" "CPU ticks in ${WINDOW_S} s at the limit (of $((WINDOW_S * HZ)))" "${R[mesh_ticks]}" "${R[bouncer_ticks]}" "< $max_ticks" "$verdict"
verdict=pass; [ "${R[mesh_win_lines]}" -lt 10 ] || verdict=FAIL
figure "$C" "log lines in ${WINDOW_S} s at the limit" "${R[mesh_win_lines]}" "${R[bouncer_win_lines]}" "< 10" "$verdict"
figure "$C" "log lines from the limit to the close (logins included)" "${R[mesh_lines]}" "${R[bouncer_lines]}" "-" "-"
figure "$C" "of them 'accept failed'" "${R[mesh_accept_lines]}" "${R[bouncer_accept_lines]}" "-" "-"
verdict=pass; [ "${R[mesh_load]}" -gt 0 ] || verdict=FAIL
figure "$C" "load transactions in the ${WINDOW_S} s" "${R[mesh_load]}" "${R[bouncer_load]}" "> 0" "$verdict"
verdict=pass; [ "${R[mesh_back]}" = yes ] || verdict=FAIL
figure "$C" "new client accepted after the close" "${R[mesh_back]}" "${R[bouncer_back]}" "yes" "$verdict"

[ "${R[mesh_ticks]}" -lt "$max_ticks" ] || fail "pgmesh used ${R[mesh_ticks]} CPU ticks in $WINDOW_S s at the descriptor limit"
[ "${R[mesh_win_lines]}" -lt 10 ] || fail "pgmesh wrote ${R[mesh_win_lines]} log lines in $WINDOW_S s at the descriptor limit"
[ "${R[mesh_load]}" -gt 0 ] || fail "the load did not commit through pgmesh while it was at the descriptor limit"
[ "${R[mesh_back]}" = yes ] || fail "pgmesh accepted no new client after the $N closed"
grep -q 'accept failed: Too many open files' "$MESH_LOG" || fail "pgmesh never reached the limit: the case tested nothing"
wait_log 'accepting new connections again' 5
mesh_stop
echo ok
