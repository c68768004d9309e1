#!/usr/bin/env bash
# 5,000 clients connect, run one query and drop, 50 at a time, under the load of four tenants:
# through pgmesh (logging in with tokens) and then through PgBouncer (with the password), each with
# its own load. Connection churn is what an application fleet's restart or a serverless burst looks
# like; a pooler must serve all of them, give back every descriptor, and keep its memory from
# creeping (issue 12: RSS after the storm within 16 MiB of its start, recorded as a figure). Hard
# assertions: every client succeeds, the load sees no other tenant's rows, pgmesh's fd count
# returns to where it started, and a new client is served afterwards.
. "$(dirname "$0")/lib.sh"

N=${FAULT_STORM_N:-5000}
declare -A R=() # results, by pooler: R[mesh_ok], R[bouncer_ok], ...
mesh_config
mesh_start
bouncer_start
: > "$TEST_DIR/storm.tokens"
for t in DE FR ES IT; do echo "$t $(mint "$t" regional_analyst)" >> "$TEST_DIR/storm.tokens"; done

settle_fds() { # PID START: waits up to 10 s for the fd count to be back at START; prints it
    local pid=$1 start=$2 n
    for _ in $(seq 1 100); do
        n=$(proc_fds "$pid")
        [ "$n" -le "$start" ] && break
        sleep 0.1
    done
    echo "$n"
}

# storm NAME mesh|bouncer PID: sets R[NAME_rss0/peak/rss1] (KiB), R[NAME_fds0/fds1], R[NAME_ok],
# R[NAME_err], R[NAME_secs], R[NAME_iso], R[NAME_load_err]
storm() {
    local name=$1 mode=$2 pid=$3 port args=()
    if [ "$mode" = mesh ]; then
        port=$MESH_PORT; args=(--tokens "$TEST_DIR/storm.tokens")
    else
        port=$BOUNCER_PORT; args=(--password "$BOUNCER_PASSWORD")
    fi
    # A think time leaves the two shared cores to the storm; the load is there to be disturbed.
    load_start "$name" "$mode" --think-ms 5
    load_wait_ok "$name" 100 20
    sleep 1
    local rss0 fds0
    rss0=$(proc_rss_kb "$pid") fds0=$(proc_fds "$pid")
    echo "== $name: $N clients, 50 at a time (RSS $rss0 KiB, $fds0 fds)"
    "$PYTHON" "$FAULTS_DIR/clients.py" storm --mode "$mode" --port "$port" "${args[@]}" --n "$N" \
        --concurrency 50 --pid "$pid" --max-seconds 400 --out "$TEST_DIR/storm-$name.json"
    cat "$TEST_DIR/storm-$name.json"; echo
    get() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$TEST_DIR/storm-$name.json" "$1"; }
    load_wait_ok "$name" 100 20
    # Freed memory and closed sockets are given back as the last clients' closes are read.
    sleep 2
    local fds1
    fds1=$(settle_fds "$pid" "$fds0")
    R[${name}_rss0]="$rss0"
    R[${name}_peak]="$(get peak_rss_kb)"
    R[${name}_rss1]="$(proc_rss_kb "$pid")"
    R[${name}_fds0]="$fds0"
    R[${name}_fds1]="$fds1"
    R[${name}_ok]="$(get ok)"
    R[${name}_err]="$(get errors)"
    R[${name}_secs]="$(get seconds)"
    R[${name}_lasterr]="$(get last_error)"
    R[${name}_load_err]="$(load_get "$name" errors)"
    R[${name}_iso]="$(load_get "$name" isolation_failures)"
    load_stop "$name"
}

storm mesh mesh "$MESH_PID"
storm bouncer bouncer "$BOUNCER_PID"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
growth() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1024 }'; }
C="Client storm ($N)"
figure "$C" "RSS before (MiB)" "$(mib "${R[mesh_rss0]}")" "$(mib "${R[bouncer_rss0]}")" "-" "-"
figure "$C" "RSS at peak (MiB)" "$(mib "${R[mesh_peak]}")" "$(mib "${R[bouncer_peak]}")" "-" "-"
figure "$C" "RSS after (MiB)" "$(mib "${R[mesh_rss1]}")" "$(mib "${R[bouncer_rss1]}")" "-" "-"
mesh_growth=$(growth "${R[mesh_rss0]}" "${R[mesh_rss1]}")
verdict=pass
awk -v g="$mesh_growth" 'BEGIN { exit !(g <= 16) }' || verdict="over (issue 12)"
figure "$C" "RSS growth kept after the storm (MiB)" "$mesh_growth" "$(growth "${R[bouncer_rss0]}" "${R[bouncer_rss1]}")" "<= 16 (issue 12)" "$verdict"
figure "$C" "time for the $N clients (s)" "${R[mesh_secs]}" "${R[bouncer_secs]}" "-" "-"
verdict=pass; [ "${R[mesh_ok]}" = "$N" ] || verdict=FAIL
figure "$C" "clients failed" "${R[mesh_err]}" "${R[bouncer_err]}" "0" "$verdict"
verdict=pass; [ "${R[mesh_fds1]}" -le "${R[mesh_fds0]}" ] || verdict=FAIL
figure "$C" "fds before -> after" "${R[mesh_fds0]} -> ${R[mesh_fds1]}" "${R[bouncer_fds0]} -> ${R[bouncer_fds1]}" "back to start" "$verdict"
verdict=pass; [ "${R[mesh_iso]}" = 0 ] || verdict=FAIL
figure "$C" "load: isolation failures / failed transactions" "${R[mesh_iso]} / ${R[mesh_load_err]}" "${R[bouncer_iso]} / ${R[bouncer_load_err]}" "0 / -" "$verdict"

[ "${R[mesh_ok]}" = "$N" ] || fail "${R[mesh_err]} of $N clients failed through pgmesh (last: ${R[mesh_lasterr]})"
[ "${R[mesh_fds1]}" -le "${R[mesh_fds0]}" ] || fail "pgmesh had ${R[mesh_fds0]} fds before the storm and ${R[mesh_fds1]} after: a leak"
assert_eq 3 "$(mesh_psql "$(mint DE regional_analyst)" -c 'SELECT count(*) FROM core.fct_playback_sessions')" "a new client after the storm"
mesh_stop
echo ok
