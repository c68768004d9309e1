#!/usr/bin/env bash
# Integration suite: one PostgreSQL 15 for the whole run (temp dir, free loopback port, sample mesh
# loaded), then each tests/integration/test_*.sh in its own process with a fresh TEST_DIR; libpq C
# tests (tests/integration/*.c) are compiled first and run by their test_*.sh wrappers.
# Prints ok/FAIL per test (with the tail of its output and pgmesh log on failure) and ends with
# "N passed, M failed[, K skipped]" (a test exits 77 when it does not apply to this run). Usage:
# BUILD=build tests/integration/run.sh [test_name ...]
# PGMESH_EXTENSION=1: the suite's cluster preloads the pgmesh extension (installed beforehand by
# make extension) with a key, media_analytics has CREATE EXTENSION pgmesh, and every pgmesh the
# tests start requires it (lib.sh reads SERVER_KEY_FILE): the whole suite through the extension.
# Env: BUILD (build), PGBIN, TESTS_DIR (where the test_*.sh are, tests/integration; the fault suite
# passes tests/faults), TEST_TIMEOUT_S (per test, 120), SUITE_TIMEOUT_S (whole run, 480: tests
# left when it runs out fail as not run, so a hang cannot hold CI), KEEP_TMP=1 keeps the temp dir.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-120}
SUITE_TIMEOUT_S=${SUITE_TIMEOUT_S:-480}
export BUILD PGBIN PGMESH=$BUILD/pgmesh PGMESH_TOKEN=$BUILD/pgmesh-token

# shellcheck source=../../scripts/pgcluster.sh
. "$ROOT/scripts/pgcluster.sh"

for bin in "$PGMESH" "$PGMESH_TOKEN"; do
    [ -x "$bin" ] || { echo "run.sh: $bin is not built (make all)" >&2; exit 2; }
done

RUN_DIR=$(mktemp -d /tmp/pgmesh-it.XXXXXX) || exit 2
chmod 755 "$RUN_DIR"   # the postgres OS user must reach the cluster directory inside
PG_DIR=$RUN_DIR/pg
PG_PORT=

teardown() {
    pgcluster_stop "$PG_DIR"
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "run.sh: kept $RUN_DIR"
    else
        rm -rf "$RUN_DIR"
    fi
}
trap teardown EXIT
# A test runs under timeout(1) in its own process group; an interrupt ends it (and its pgmesh) too.
test_pid=
trap '[ -n "$test_pid" ] && kill -TERM "$test_pid" 2>/dev/null; exit 130' INT TERM

mkdir -p "$PG_DIR"
ext_settings=()
SERVER_KEY_FILE=
if [ "${PGMESH_EXTENSION:-0}" = 1 ]; then
    # One key, two copies: the server's must belong to its OS user alone (the extension checks,
    # as PostgreSQL does for ssl_key_file); pgmesh's is ours.
    SERVER_KEY_FILE=$RUN_DIR/server.key
    (umask 077 && openssl rand -hex 32 > "$SERVER_KEY_FILE")
    install -m 600 "$SERVER_KEY_FILE" "$PG_DIR/pgmesh.key"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR/pgmesh.key"
    # The settings test_pinned.sh pins: the extension sets and caps only those it lists.
    ext_settings=(shared_preload_libraries=pgmesh "pgmesh.key_file=$PG_DIR/pgmesh.key"
        pgmesh.pinned_settings=hash_mem_multiplier,max_parallel_workers_per_gather)
fi
if ! pgcluster_start_free "$PG_DIR" "" max_connections=150 "${ext_settings[@]}"; then
    echo "run.sh: could not start PostgreSQL" >&2
    exit 2
fi
PG_PORT=$PGCLUSTER_PORT
PG_SOCKET_DIR=$(pgcluster_socket_dir "$PG_DIR")

# Server roles' passwords: random, known only to the passfile pgmesh reads.
pw_marketing=$(openssl rand -hex 16)
pw_audit=$(openssl rand -hex 16)
pw_blocked=$(openssl rand -hex 16)
PG_PASSFILE=$RUN_DIR/pgpass
(
    umask 077
    for r in marketing_domain_role:$pw_marketing audit_role:$pw_audit blocked_role:$pw_blocked; do
        echo "127.0.0.1:$PG_PORT:*:${r%%:*}:${r#*:}"
        echo "localhost:$PG_PORT:*:${r%%:*}:${r#*:}"
    done > "$PG_PASSFILE"
)
if ! pgcluster_psql "$PG_DIR" "$PG_PORT" -d postgres -v marketing_password="$pw_marketing" \
        -v audit_password="$pw_audit" -v blocked_password="$pw_blocked" \
        -f "$ROOT/demo/mesh.sql" > "$RUN_DIR/mesh.log" 2>&1; then
    echo "run.sh: loading demo/mesh.sql failed:" >&2
    cat "$RUN_DIR/mesh.log" >&2
    exit 2
fi
if [ -n "$SERVER_KEY_FILE" ] &&
    ! pgcluster_psql "$PG_DIR" "$PG_PORT" -d media_analytics -c "CREATE EXTENSION pgmesh" >> "$RUN_DIR/mesh.log" 2>&1; then
    echo "run.sh: CREATE EXTENSION pgmesh failed (make extension installs it):" >&2
    cat "$RUN_DIR/mesh.log" >&2
    exit 2
fi
export PG_DIR PG_PORT PG_SOCKET_DIR PG_PASSFILE SERVER_KEY_FILE

passed=0
failed=0
skipped=0
failed_names=()

report() { # name status output_file test_dir [seconds]
    if [ "$2" = 0 ]; then
        echo "ok   $1${5:+ (${5} s)}"
        passed=$((passed + 1))
    elif [ "$2" = 77 ]; then
        echo "skip $1 ($(tail -n 1 "$3"))"
        skipped=$((skipped + 1))
    else
        echo "FAIL $1 (status $2)"
        failed=$((failed + 1))
        failed_names+=("$1")
        if [ -s "$3" ]; then
            echo "  --- last lines of its output:"
            tail -n 25 "$3" | sed 's/^/  | /'
        fi
        local log
        for log in "$4"/*.log; do
            [ -f "$log" ] && [ "$log" != "$3" ] || continue
            echo "  --- last lines of ${log#"$4"/}:"
            tail -n 25 "$log" | sed 's/^/  | /'
        done
    fi
}

# libpq C tests.
mkdir -p "$BUILD/tests/integration"
for src in tests/integration/*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    out=$RUN_DIR/compile_$name.txt
    if gcc -std=c11 -Wall -Wextra -Werror -I/usr/include/postgresql "$src" -lpq \
            -o "$BUILD/tests/integration/$name" > "$out" 2>&1; then
        :
    else
        report "compile $name.c" 1 "$out" "$RUN_DIR/none"
    fi
done

TESTS_DIR=${TESTS_DIR:-tests/integration}
tests=()
if [ $# -gt 0 ]; then
    for t in "$@"; do tests+=("$TESTS_DIR/${t%.sh}.sh"); done
else
    for t in "$TESTS_DIR"/test_*.sh; do [ -f "$t" ] && tests+=("$t"); done
fi

for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    TEST_DIR=$RUN_DIR/t/$name
    mkdir -p "$TEST_DIR"
    out=$TEST_DIR/output.txt
    left=$((SUITE_TIMEOUT_S - SECONDS))
    if [ "$left" -lt 10 ]; then
        echo "not run: the suite's ${SUITE_TIMEOUT_S}s are used up" > "$out"
        report "$name" 1 "$out" "$TEST_DIR"
        continue
    fi
    limit=$(( left < TEST_TIMEOUT_S ? left : TEST_TIMEOUT_S ))
    started=$SECONDS
    TEST_DIR=$TEST_DIR timeout -k 10 "$limit" bash "$t" > "$out" 2>&1 < /dev/null &
    test_pid=$!
    wait "$test_pid"
    st=$?
    test_pid=
    # 124 is also what a test returns when a command in it timed out; only ours takes this long.
    if [ "$st" = 124 ] && [ $((SECONDS - started)) -ge "$limit" ]; then
        echo "run.sh: timed out after ${limit}s" >> "$out"
    fi
    report "$name" "$st" "$out" "$TEST_DIR" $((SECONDS - started))
done

if [ "$failed" -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
    echo "--- last lines of postgres.log:"
    tail -n 15 "$PG_DIR/postgres.log" | sed 's/^/  | /'
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
