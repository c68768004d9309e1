#!/usr/bin/env bash
# pgmesh vs PgBouncer vs direct, side by side in one run (make bench): its own PostgreSQL 15
# (max_connections=200, pgbench -i -s 10), PgBouncer (transaction pooling, pool 20, SCRAM) and
# pgmesh (transaction pooling, pool 20, JWT login, claims set per transaction), then pgbench -S with
# 64 persistent clients in the simple, extended and prepared query modes and with a new connection
# per transaction (-C), interleaved direct/PgBouncer/pgmesh for BENCH_ROUNDS rounds (PgBouncer 1.18
# is left out of -M prepared: it has no prepared statements in transaction pooling). Prints a
# table of TPS, average latency and pgmesh's CPU time per transaction per target, the
# pgmesh/PgBouncer and pgmesh/direct ratios, and pgmesh's prepared/extended ratio.
# Env: BUILD (build), BENCH_T (seconds per run, 20), BENCH_ROUNDS (2), BENCH_SCALE (10),
#      BENCH_OUT (also write the table there), KEEP_TMP=1 keeps the temp dir,
#      BENCH_TESTS (which workloads: S64 S64X S64P S8C, the default all four),
#      BENCH_EXTENSION=1 (also target "ext": a second PostgreSQL with the pgmesh extension preloaded
#      and a pgmesh that requires it, so claims and limits go through pgmesh.apply; make extension
#      installs it first),
#      BENCH_BASE (another pgmesh binary, e.g. a build of an earlier commit: run as target "base"
#      with the same config, interleaved with the others, for a before/after in one run).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PGMESH=$BUILD/pgmesh
PGMESH_TOKEN=$BUILD/pgmesh-token
BENCH_BASE=${BENCH_BASE:-}
BENCH_EXTENSION=${BENCH_EXTENSION:-0}
BENCH_T=${BENCH_T:-20}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_SCALE=${BENCH_SCALE:-10}
. "$ROOT/scripts/pgcluster.sh"
PGBENCH=$PGBIN/pgbench

for bin in "$PGMESH" "$PGMESH_TOKEN" ${BENCH_BASE:+"$BENCH_BASE"} "$PGBENCH" "$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"; do
    [ -x "$bin" ] || { echo "bench: $bin not found (make all; make deps)" >&2; exit 2; }
done

RUN=$(mktemp -d /tmp/pgmesh-bench.XXXXXX)
chmod 755 "$RUN"
PG_PORT=
MESH_PID=
BASE_PID=
EXT_PID=
teardown() {
    [ -n "$MESH_PID" ] && { kill -TERM "$MESH_PID" 2>/dev/null; wait "$MESH_PID" 2>/dev/null; }
    [ -n "$BASE_PID" ] && { kill -TERM "$BASE_PID" 2>/dev/null; wait "$BASE_PID" 2>/dev/null; }
    [ -n "$EXT_PID" ] && { kill -TERM "$EXT_PID" 2>/dev/null; wait "$EXT_PID" 2>/dev/null; }
    [ -d "$RUN/pgx" ] && pgcluster_stop "$RUN/pgx"
    if [ -f "$RUN/pgbouncer/pgbouncer.pid" ]; then
        kill -TERM "$(cat "$RUN/pgbouncer/pgbouncer.pid")" 2>/dev/null
        sleep 0.5
    fi
    pgcluster_stop "$RUN/pg"
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "bench: kept $RUN"; else rm -rf "$RUN"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
wait_port() { # PORT WHAT
    local i
    for i in $(seq 1 100); do
        ss -Htln "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    echo "bench: $2 not listening on port $1 after 10 s" >&2
    return 1
}

# bench_db DIR PORT: the bench database, its pgbench tables and bench_user's grants (password $pw).
bench_db() {
    pgcluster_psql "$1" "$2" -d postgres -v pw="$pw" <<'EOF'
CREATE ROLE bench_user LOGIN PASSWORD :'pw';
CREATE DATABASE bench;
EOF
    timeout 600 "$PGBENCH" -i -q -s "$BENCH_SCALE" -h "$(pgcluster_socket_dir "$1")" -p "$2" \
        -U postgres bench > "$RUN/pgbench-init-$2.txt" 2>&1 || { cat "$RUN/pgbench-init-$2.txt"; exit 1; }
    pgcluster_psql "$1" "$2" -d bench \
        -c 'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO bench_user' \
        -c 'GRANT USAGE ON SCHEMA public TO bench_user' -c 'VACUUM ANALYZE'
}

echo "== PostgreSQL 15 (max_connections=200), pgbench -i -s $BENCH_SCALE"
pgcluster_start_free "$RUN/pg" "" max_connections=200 shared_buffers=256MB log_connections=off \
    log_disconnections=off
PG_PORT=$PGCLUSTER_PORT
pw=$(openssl rand -hex 16)
bench_db "$RUN/pg" "$PG_PORT"
(umask 077 && echo "127.0.0.1:$PG_PORT:bench:bench_user:$pw" > "$RUN/pgpass")

if [ "$BENCH_EXTENSION" = 1 ]; then
    echo "== a second PostgreSQL 15 with the pgmesh extension preloaded"
    mkdir -p "$RUN/pgx"
    (umask 077 && openssl rand -hex 32 > "$RUN/server.key")
    install -m 600 "$RUN/server.key" "$RUN/pgx/pgmesh.key"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$RUN/pgx/pgmesh.key"
    pgcluster_start_free "$RUN/pgx" "" max_connections=200 shared_buffers=256MB log_connections=off \
        log_disconnections=off shared_preload_libraries=pgmesh "pgmesh.key_file=$RUN/pgx/pgmesh.key"
    PGX_PORT=$PGCLUSTER_PORT
    bench_db "$RUN/pgx" "$PGX_PORT"
    pgcluster_psql "$RUN/pgx" "$PGX_PORT" -d bench -c 'CREATE EXTENSION pgmesh'
    echo "127.0.0.1:$PGX_PORT:bench:bench_user:$pw" >> "$RUN/pgpass"
fi

echo "== PgBouncer $(pgbouncer --version | head -n 1 | awk '{print $2}') (transaction pooling, pool 20, scram-sha-256)"
PB_PORT=$(pgcluster_free_port)
mkdir -p "$RUN/pgbouncer"
cat > "$RUN/pgbouncer/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $RUN/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
logfile = $RUN/pgbouncer/pgbouncer.log
pidfile = $RUN/pgbouncer/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
echo "\"bench_user\" \"$pw\"" > "$RUN/pgbouncer/userlist.txt"
chmod 600 "$RUN/pgbouncer/userlist.txt"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$RUN/pgbouncer"
as_postgres pgbouncer -d -q "$RUN/pgbouncer/pgbouncer.ini"
wait_port "$PB_PORT" PgBouncer

echo "== pgmesh (transaction pooling, pool 20, JWT HS256, claims per transaction)"
MESH_PORT=$(pgcluster_free_port)
(umask 077 && openssl rand -hex 32 > "$RUN/jwt.secret")
cat > "$RUN/pgmesh.ini" <<EOF
[pgmesh]
listen_addr = 127.0.0.1
listen_port = $MESH_PORT
unix_socket_dir =
pool_mode = transaction
; PgBouncer and PostgreSQL run without TLS here too: like for like
client_tls = disable
default_pool_size = 20
max_client_conn = 1000
query_wait_timeout = 30s
server_idle_timeout = 10m
server_connect_timeout = 15s
log_level = warning

[jwt]
algorithms = HS256
secret_file = $RUN/jwt.secret
issuer =
audience =
leeway = 30s
tenant_claim = tenant
role_claim = role

[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench passfile=$RUN/pgpass

[roles]
regional_analyst = server_user=bench_user statement_timeout=30s work_mem=64MB
EOF
"$PGMESH" -c "$RUN/pgmesh.ini" > "$RUN/pgmesh.log" 2>&1 < /dev/null &
MESH_PID=$!
wait_port "$MESH_PORT" pgmesh
if [ "$BENCH_EXTENSION" = 1 ]; then
    echo "== ext: pgmesh requiring the extension, on the second PostgreSQL"
    EXT_PORT=$(pgcluster_free_port)
    sed -e "s/^listen_port = .*/listen_port = $EXT_PORT/" -e "s/port=$PG_PORT /port=$PGX_PORT /" \
        -e "s|^\\[pgmesh\\]|[pgmesh]\\nserver_enforcement = require\\nserver_key_file = $RUN/server.key|" \
        "$RUN/pgmesh.ini" > "$RUN/ext.ini"
    "$PGMESH" -c "$RUN/ext.ini" > "$RUN/ext.log" 2>&1 < /dev/null &
    EXT_PID=$!
    wait_port "$EXT_PORT" "ext pgmesh"
fi
if [ -n "$BENCH_BASE" ]; then
    echo "== base: $BENCH_BASE (the same config on another port)"
    BASE_PORT=$(pgcluster_free_port)
    sed "s/^listen_port = .*/listen_port = $BASE_PORT/" "$RUN/pgmesh.ini" > "$RUN/base.ini"
    "$BENCH_BASE" -c "$RUN/base.ini" > "$RUN/base.log" 2>&1 < /dev/null &
    BASE_PID=$!
    wait_port "$BASE_PORT" "base pgmesh"
fi
token=$("$PGMESH_TOKEN" --secret-file "$RUN/jwt.secret" --tenant DE --role regional_analyst --ttl 36000)

# CPU time (user + system, in clock ticks) a process has used so far; 0 when there is no process.
cpu_ticks() { if [ -n "$1" ]; then awk '{ print $14 + $15 }' "/proc/$1/stat"; else echo 0; fi; }
CLK_TCK=$(getconf CLK_TCK)

# run_one TARGET ARGS... : prints "tps latency_ms cpu_us" (or FAILED three times) for one pgbench
# run; cpu_us is the pooler's CPU time per transaction (pgmesh and base only, "-" otherwise).
run_one() {
    local target=$1 out
    shift
    out=$RUN/pgbench-$target-$(date +%s%N).txt
    local port user pass pid=
    case $target in
        direct) port=$PG_PORT user=bench_user pass=$pw ;;
        pgbouncer) port=$PB_PORT user=bench_user pass=$pw ;;
        pgmesh) port=$MESH_PORT user=analyst pass=$token pid=$MESH_PID ;;
        base) port=$BASE_PORT user=analyst pass=$token pid=$BASE_PID ;;
        ext) port=$EXT_PORT user=analyst pass=$token pid=$EXT_PID ;;
    esac
    local t0 t1
    t0=$(cpu_ticks "$pid")
    if PGPASSWORD=$pass PGSSLMODE=disable timeout $((BENCH_T + 120)) "$PGBENCH" -h 127.0.0.1 -p "$port" \
            -U "$user" "$@" bench > "$out" 2>&1 && ! grep -q 'aborted' "$out"; then
        t1=$(cpu_ticks "$pid")
        awk -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" -v pid="$pid" '
             /^tps = / && !tps { tps = $3 } /^latency average = / { lat = $4 }
             /^number of transactions actually processed: / { n = $6 + 0 }
             END { if (tps == "") { print "FAILED FAILED FAILED"; exit }
                   cpu = (pid == "" || n == 0) ? "-" : sprintf("%.2f", ticks * 1e6 / hz / n)
                   print tps, lat, cpu }' "$out"
    else
        echo "bench: pgbench $target $* failed:" >&2
        tail -n 5 "$out" >&2
        echo "FAILED FAILED FAILED"
    fi
}

declare -A tps lat cpu
read -r -a tests <<< "${BENCH_TESTS:-S64 S64X S64P S8C}"
declare -A args=(
    [S64]="-n -S -c 64 -j 2 -T $BENCH_T"
    [S64X]="-n -S -M extended -c 64 -j 2 -T $BENCH_T"
    [S64P]="-n -S -M prepared -c 64 -j 2 -T $BENCH_T"
    [S8C]="-n -S -C -c 8 -j 2 -T $BENCH_T"
)
targets_of() {
    local t="direct pgbouncer pgmesh"
    [ "$1" = S64P ] && t="direct pgmesh"
    [ "$BENCH_EXTENSION" = 1 ] && t="$t ext"
    echo "$t${BENCH_BASE:+ base}"
}
failed=0
for t in "${tests[@]}"; do
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        for target in $(targets_of "$t"); do
            # shellcheck disable=SC2086
            read -r tps["$t,$target,$r"] lat["$t,$target,$r"] cpu["$t,$target,$r"] < <(run_one "$target" ${args[$t]})
            [ "${tps[$t,$target,$r]}" = FAILED ] && failed=1
            printf '  pgbench %-32s %-9s round %d: tps %s, latency %s ms, pooler CPU %s us/tx\n' "${args[$t]}" \
                "$target" "$r" "${tps[$t,$target,$r]}" "${lat[$t,$target,$r]}" "${cpu[$t,$target,$r]}"
        done
    done
done

mean() { # key-prefix array-name
    local -n a=$2
    local r sum=0 n=0
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        [ -z "${a[$1,$r]:-}" ] && { echo "n/a"; return; }
        [ "${a[$1,$r]}" = FAILED ] && { echo FAILED; return; }
        [ "${a[$1,$r]}" = - ] && { echo -; return; }
        sum=$(awk -v s="$sum" -v x="${a[$1,$r]}" 'BEGIN { print s + x }')
        n=$((n + 1))
    done
    awk -v s="$sum" -v n="$n" 'BEGIN { printf "%.1f", s / n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "-"; else printf "%.2f", a / b }'; }

table=$RUN/table.txt
{
    echo
    echo "pgmesh $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +'%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), PgBouncer $(pgbouncer --version | head -n 1 | awk '{print $2}'); ${BENCH_T}s per run, mean of $BENCH_ROUNDS interleaved rounds"
    printf '%-34s %-10s %12s %14s %16s\n' "pgbench" "target" "tps" "latency (ms)" "CPU (us/tx)"
    for t in "${tests[@]}"; do
        for target in $(targets_of "$t"); do
            printf '%-34s %-10s %12s %14s %16s\n' "${args[$t]}" "$target" "$(mean "$t,$target" tps)" \
                "$(mean "$t,$target" lat)" "$(mean "$t,$target" cpu)"
        done
    done
    echo
    printf '%-34s %18s %18s\n' "tps ratio" "pgmesh/PgBouncer" "pgmesh/direct"
    for t in "${tests[@]}"; do
        printf '%-34s %18s %18s\n' "${args[$t]}" \
            "$(ratio "$(mean "$t,pgmesh" tps)" "$(mean "$t,pgbouncer" tps)")" \
            "$(ratio "$(mean "$t,pgmesh" tps)" "$(mean "$t,direct" tps)")"
    done
    if [ "$BENCH_EXTENSION" = 1 ]; then
        echo
        printf '%-34s %18s\n' "tps ratio" "ext/pgmesh"
        for t in "${tests[@]}"; do
            printf '%-34s %18s\n' "${args[$t]}" "$(ratio "$(mean "$t,ext" tps)" "$(mean "$t,pgmesh" tps)")"
        done
    fi
    if [ -n "$BENCH_BASE" ]; then
        echo
        printf '%-34s %18s\n' "tps ratio" "pgmesh/base"
        for t in "${tests[@]}"; do
            printf '%-34s %18s\n' "${args[$t]}" "$(ratio "$(mean "$t,pgmesh" tps)" "$(mean "$t,base" tps)")"
        done
    fi
    echo
    printf '%-34s %18s\n' "pgmesh -M prepared / -M extended" \
        "$(ratio "$(mean "S64P,pgmesh" tps)" "$(mean "S64X,pgmesh" tps)")"
} > "$table"
cat "$table"
[ -n "${BENCH_OUT:-}" ] && cp "$table" "$BENCH_OUT"
if grep -qE 'Sanitizer|runtime error:' "$RUN/pgmesh.log"; then
    echo "bench: sanitizer report in the pgmesh log" >&2
    failed=1
fi
[ "$failed" = 0 ] || { echo "bench: some runs failed (see above)" >&2; exit 1; }
