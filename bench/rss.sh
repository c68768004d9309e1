#!/usr/bin/env bash
# pgmesh's memory and time on large streams (not part of make check): its own PostgreSQL 15 and
# pgmesh (transaction pooling, JWT login, TLS off), a table of BENCH_ROWS rows, then a SELECT of
# all of them, COPY TO STDOUT and COPY FROM STDIN with psql, straight to PostgreSQL and through
# pgmesh in turn for BENCH_ROUNDS rounds. Prints pgmesh's VmHWM (peak RSS) and VmRSS before and
# after every flow through it, and a table of mean wall times per flow and target.
# Env: BUILD (build), BENCH_ROWS (1000000), BENCH_ROUNDS (3), BENCH_OUT (also write the table
#      there), KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PGMESH=$BUILD/pgmesh
PGMESH_TOKEN=$BUILD/pgmesh-token
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
. "$ROOT/scripts/pgcluster.sh"

for bin in "$PGMESH" "$PGMESH_TOKEN" "$PGBIN/psql"; do
    [ -x "$bin" ] || { echo "rss: $bin not found (make all)" >&2; exit 2; }
done

RUN=$(mktemp -d /tmp/pgmesh-rss.XXXXXX)
chmod 755 "$RUN"
MESH_PID=
teardown() {
    [ -n "$MESH_PID" ] && { kill -TERM "$MESH_PID" 2>/dev/null; wait "$MESH_PID" 2>/dev/null; }
    pgcluster_stop "$RUN/pg"
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "rss: kept $RUN"; else rm -rf "$RUN"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

echo "== PostgreSQL 15, $BENCH_ROWS rows"
pgcluster_start_free "$RUN/pg" "" shared_buffers=256MB log_connections=off log_disconnections=off
PG_PORT=$PGCLUSTER_PORT
pw=$(openssl rand -hex 16)
awk -v n="$BENCH_ROWS" 'BEGIN { for (i = 1; i <= n; i++) printf "%d\tGrüße, Zeile %d von %d: %d\n", i, i, n, i * 7919 % 1000003 }' \
    > "$RUN/rows.tsv"
pgcluster_psql "$RUN/pg" "$PG_PORT" -d postgres -v pw="$pw" <<'EOF_SQL'
CREATE ROLE bench_user LOGIN PASSWORD :'pw';
CREATE DATABASE bench;
EOF_SQL
pgcluster_psql "$RUN/pg" "$PG_PORT" -d bench <<EOF_SQL
CREATE TABLE rss_rows (n int PRIMARY KEY, note text NOT NULL);
CREATE TABLE rss_in (n int, note text);
GRANT SELECT ON rss_rows TO bench_user;
GRANT INSERT ON rss_in TO bench_user;
\copy rss_rows FROM '$RUN/rows.tsv'
VACUUM ANALYZE rss_rows;
EOF_SQL
(umask 077 && echo "127.0.0.1:$PG_PORT:bench:bench_user:$pw" > "$RUN/pgpass")

echo "== pgmesh (transaction pooling, JWT HS256, TLS off)"
MESH_PORT=$(pgcluster_free_port)
(umask 077 && openssl rand -hex 32 > "$RUN/jwt.secret")
cat > "$RUN/pgmesh.ini" <<EOF_INI
[pgmesh]
listen_addr = 127.0.0.1
listen_port = $MESH_PORT
workers = 1
unix_socket_dir =
pool_mode = transaction
client_tls = disable
default_pool_size = 4
log_level = warning

[jwt]
algorithms = HS256
secret_file = $RUN/jwt.secret

[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench passfile=$RUN/pgpass

[roles]
regional_analyst = server_user=bench_user statement_timeout=5min work_mem=64MB
EOF_INI
"$PGMESH" -c "$RUN/pgmesh.ini" > "$RUN/pgmesh.log" 2>&1 < /dev/null &
MESH_PID=$!
for i in $(seq 1 100); do
    ss -Htln "sport = :$MESH_PORT" | grep -q . && break
    sleep 0.1
done
ss -Htln "sport = :$MESH_PORT" | grep -q . || { echo "rss: pgmesh not listening" >&2; exit 1; }
token=$("$PGMESH_TOKEN" --secret-file "$RUN/jwt.secret" --tenant DE --role regional_analyst --ttl 36000)

mem() { awk '$1 == "VmHWM:" { h = $2 } $1 == "VmRSS:" { r = $2 } END { printf "VmHWM %6d kB, VmRSS %6d kB", h, r }' "/proc/$MESH_PID/status"; }

# run_flow FLOW TARGET: runs one flow with psql; prints the time psql's \timing gives the statement
# (from sending it to the last row, not counting the login: straight to PostgreSQL that is a SCRAM
# exchange, through pgmesh a token check) and the wall time of the whole psql run, in ms.
run_flow() {
    local flow=$1 target=$2 port user pass t0 t1 n stmt
    case $target in
        direct) port=$PG_PORT user=bench_user pass=$pw ;;
        pgmesh) port=$MESH_PORT user=analyst pass=$token ;;
    esac
    pgcluster_psql "$RUN/pg" "$PG_PORT" -d bench -c 'TRUNCATE rss_in' > /dev/null
    local psql=(env PGPASSWORD="$pass" PGSSLMODE=disable PGCLIENTENCODING=UTF8 timeout 600
                "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$user" -d bench)
    t0=$(date +%s%N)
    case $flow in
        select) "${psql[@]}" -c '\timing on' -c 'SELECT n, note FROM rss_rows ORDER BY n' > "$RUN/out" ;;
        copy_out) "${psql[@]}" -c '\timing on' -c 'COPY (SELECT n, note FROM rss_rows ORDER BY n) TO STDOUT' > "$RUN/out" ;;
        copy_in) "${psql[@]}" -c '\timing on' -c 'COPY rss_in FROM STDIN' < "$RUN/rows.tsv" > "$RUN/out" ;;
    esac
    t1=$(date +%s%N)
    # Every flow moves all the rows, checked so a fast failure cannot pass for a fast run.
    case $flow in
        copy_in) n=$(pgcluster_psql "$RUN/pg" "$PG_PORT" -d bench -A -t -c 'SELECT count(*) FROM rss_in') ;;
        *) n=$(grep -vc '^Time: ' "$RUN/out" || true) ;;
    esac
    stmt=$(awk '/^Time: / { printf "%d", $2 }' "$RUN/out")
    [ "$n" = "$BENCH_ROWS" ] || { echo "rss: $flow $target moved $n rows, not $BENCH_ROWS" >&2; exit 1; }
    echo "$stmt $(( (t1 - t0) / 1000000 ))"
}

flows=(select copy_out copy_in)
declare -A stmt wall
start_mem=$(mem)
echo "pgmesh at start: $start_mem"
for r in $(seq 1 "$BENCH_ROUNDS"); do
    for flow in "${flows[@]}"; do
        res=$(run_flow "$flow" direct)
        read -r "stmt[$flow,direct,$r]" "wall[$flow,direct,$r]" <<< "$res"
        before=$(mem)
        res=$(run_flow "$flow" pgmesh)
        read -r "stmt[$flow,pgmesh,$r]" "wall[$flow,pgmesh,$r]" <<< "$res"
        printf 'round %d %-8s direct %5d ms (%5d wall), pgmesh %5d ms (%5d wall); pgmesh before %s, after %s\n' \
            "$r" "$flow" "${stmt[$flow,direct,$r]}" "${wall[$flow,direct,$r]}" "${stmt[$flow,pgmesh,$r]}" \
            "${wall[$flow,pgmesh,$r]}" "$before" "$(mem)"
    done
done

mean() { # ARRAY-NAME FLOW TARGET
    local -n a=$1
    local r sum=0
    for r in $(seq 1 "$BENCH_ROUNDS"); do sum=$((sum + a[$2,$3,$r])); done
    echo $((sum / BENCH_ROUNDS))
}
table=$RUN/table.txt
{
    echo
    echo "$PGMESH (checkout $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')), $(date -u +'%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'); $BENCH_ROWS rows ($(du -m "$RUN/rows.tsv" | cut -f1) MB as text), psql, mean of $BENCH_ROUNDS interleaved rounds"
    printf '%-10s %14s %14s %8s %16s %16s\n' flow "direct ms" "pgmesh ms" ratio "direct wall ms" "pgmesh wall ms"
    for flow in "${flows[@]}"; do
        d=$(mean stmt "$flow" direct)
        m=$(mean stmt "$flow" pgmesh)
        printf '%-10s %14d %14d %8s %16d %16d\n' "$flow" "$d" "$m" \
            "$(awk -v a="$m" -v b="$d" 'BEGIN { printf "%.2f", b ? a / b : 0 }')" \
            "$(mean wall "$flow" direct)" "$(mean wall "$flow" pgmesh)"
    done
    echo "pgmesh memory: at start $start_mem; at the end $(mem)"
} > "$table"
cat "$table"
[ -n "${BENCH_OUT:-}" ] && cp "$table" "$BENCH_OUT"
if grep -qE 'Sanitizer|runtime error:' "$RUN/pgmesh.log"; then
    echo "rss: sanitizer report in the pgmesh log" >&2
    exit 1
fi
