#!/usr/bin/env bash
# One backend serving the pooler freezes (SIGSTOP: a stuck disk, a debugger, a host paused) in the
# middle of a client's transaction, while the four tenants' load runs on a pool of 4. What a user
# checks: the other tenants keep committing on the other servers (load transactions per second
# before and during the freeze), the client on the frozen backend is not stuck forever, and after
# SIGCONT the frozen server is usable again (not left idle in transaction). The cancel that
# statement_timeout sends cannot act in a stopped process, so it is the pooler's own clock that
# must end that client: pgmesh ends it when its statement_timeout cancel (2 s + 1 s grace) has not
# acted within 5 s, with no other limit set; PgBouncer needs query_timeout (6 s here; its default
# 0 leaves the client waiting). PgBouncer beside it on the same load.
. "$(dirname "$0")/lib.sh"

FROZEN=
thaw() { [ -z "$FROZEN" ] || kill -CONT "$FROZEN" 2>/dev/null || true; }
lib_at_exit thaw # a frozen backend would hold the suite's cluster (and its shutdown) forever

mesh_config
ini_set pgmesh default_pool_size 4
ini_set roles regional_analyst "server_user=marketing_domain_role statement_timeout=2s work_mem=128MB"
mesh_start
bouncer_start default_pool_size=4 query_timeout=6
tok=$(mint DE regional_analyst)

tps() { # NAME SECS: the load's commits per second over the next SECS
    local a b
    a=$(load_get "$1" ok)
    sleep "$2"
    b=$(load_get "$1" ok)
    echo $(((b - a) / $2))
}

# phase NAME PSQL: sets TPS_BEFORE, TPS_DURING, ENDED_MS (go to the frozen client's end, or
# "never" within 20 s), ENDED_HOW (its error) and RECOVERED (yes/no).
phase() {
    local name=$1 psqlf=$2 i st t0 t pid state
    rm -f "$TEST_DIR/go"
    load_start "$name" "$name" --think-ms 5
    load_wait_ok "$name" 100 20
    TPS_BEFORE=$(tps "$name" 4)

    echo "== $name: a client opens a transaction; its backend is stopped"
    (
        st=0
        {
            echo "BEGIN;"
            echo "SELECT 'frozen-victim';"
            while [ ! -f "$TEST_DIR/go" ]; do sleep 0.05; done
            echo "SELECT 'after';"
            echo "COMMIT;"
        } | $psqlf -v VERBOSITY=verbose -f - > "$TEST_DIR/$name-victim.out" 2>&1 || st=$?
        echo "$st $(now_ms)" > "$TEST_DIR/$name-victim.st"
    ) &
    pid=
    for i in $(seq 1 100); do
        pid=$(pg_psql -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%frozen-victim%' AND state = 'idle in transaction' AND pid <> pg_backend_pid()")
        [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] || fail "$name: the victim's backend was not found"
    FROZEN=$pid
    kill -STOP "$pid"
    t0=$(now_ms)
    touch "$TEST_DIR/go"
    sleep 1
    TPS_DURING=$(tps "$name" 4)

    for i in $(seq 1 150); do [ -f "$TEST_DIR/$name-victim.st" ] && break; sleep 0.1; done
    if [ -f "$TEST_DIR/$name-victim.st" ]; then
        read -r st t < "$TEST_DIR/$name-victim.st"
        ENDED_MS=$((t - t0))
        ENDED_HOW=$(grep -m1 -E 'FATAL|ERROR' "$TEST_DIR/$name-victim.out" | sed 's/^psql:[^ ]* //' || echo "status $st")
        [ "$st" != 0 ] || fail "$name: the victim's transaction committed on a stopped backend: $(cat "$TEST_DIR/$name-victim.out")"
    else
        ENDED_MS=never ENDED_HOW="still waiting $(( ($(now_ms) - t0) / 1000 )) s after its statement"
    fi
    echo "$name: frozen client: $ENDED_MS ms, $ENDED_HOW"

    kill -CONT "$pid"
    FROZEN=
    echo "== $name: SIGCONT"
    RECOVERED=no
    for i in $(seq 1 100); do
        state=$(pg_psql -c "SELECT coalesce(max(state), 'gone') FROM pg_stat_activity WHERE pid = $pid")
        case $state in idle | gone) RECOVERED=yes; break ;; esac
        sleep 0.1
    done
    echo "$name: the thawed backend is $state"
    for i in $(seq 1 100); do [ -f "$TEST_DIR/$name-victim.st" ] && break; sleep 0.1; done
    load_wait_ok "$name" 100 20
    TPS_AFTER=$(tps "$name" 2)
    load_stop "$name"
}

phase mesh "mesh_psql $tok"
mesh_before=$TPS_BEFORE mesh_during=$TPS_DURING mesh_after=$TPS_AFTER mesh_ended=$ENDED_MS mesh_how=$ENDED_HOW mesh_rec=$RECOVERED
echo "--- pgmesh's log about the victim:"
grep -E 'statement_timeout|cancel|rolled|closing server' "$MESH_LOG" | sed -n '1,12p'
phase bouncer bouncer_psql
echo "--- PgBouncer's log about the victim:"
grep -E 'query timeout|query_timeout' "$BOUNCER_LOG" | sed -n '1,6p' || true

v() { if eval "$1"; then echo pass; else echo FAIL; fi; }
fig="SIGSTOP one backend (pool 4)"
figure "$fig" "load tx/s before / during the stop / after SIGCONT" "$mesh_before / $mesh_during / $mesh_after" \
    "$TPS_BEFORE / $TPS_DURING / $TPS_AFTER" "during >= half of before" "$(v '[ $((mesh_during * 2)) -ge "$mesh_before" ]')"
figure "$fig" "frozen client ended after (ms)" "$mesh_ended (statement_timeout 2 s + cancel wait 5 s)" \
    "$ENDED_MS (query_timeout 6 s)" "< 10000" "$(v '[ "$mesh_ended" != never ] && [ "$mesh_ended" -lt 10000 ]')"
figure "$fig" "frozen client's error" "${mesh_how//|/}" "${ENDED_HOW//|/}" "-" "-"
figure "$fig" "thawed server usable again" "$mesh_rec" "$RECOVERED" "yes" "$(v '[ "$mesh_rec" = yes ]')"
[ $((mesh_during * 2)) -ge "$mesh_before" ] || fail "pgmesh's load fell from $mesh_before to $mesh_during tx/s with one of 4 servers frozen"
[ "$mesh_ended" != never ] && [ "$mesh_ended" -lt 10000 ] || fail "pgmesh's client on the frozen backend: $mesh_how"
assert_contains "$mesh_how" "57014" "pgmesh's frozen client"
assert_contains "$mesh_how" "statement_timeout" "pgmesh's frozen client"
[ "$mesh_rec" = yes ] || fail "pgmesh's thawed server was left $state"
assert_eq 3 "$(mesh_psql "$tok" -c 'SELECT count(*) FROM core.fct_playback_sessions')" "a new client afterwards"
mesh_stop
echo ok
