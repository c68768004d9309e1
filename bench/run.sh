#!/usr/bin/env bash
# pgmesh vs PgBouncer vs direct PostgreSQL in one run (make bench), interleaved round by round, one
# table of medians and a chart of TPS against clients. bench/README.md describes the workloads,
# the knobs and how to read the figures; bench/lib.sh starts the servers, bench/idle.py measures
# memory under many clients, bench/chart.gp draws the chart.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PGMESH=$BUILD/pgmesh
PGMESH_TOKEN=$BUILD/pgmesh-token
BENCH_T=${BENCH_T:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SCALE=${BENCH_SCALE:-10}
BENCH_CLIENTS=${BENCH_CLIENTS:-8 64 256}
BENCH_MODES=${BENCH_MODES:-simple extended prepared}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-select rate rls mt connect workers memory}
BENCH_RATE=${BENCH_RATE:-8000}
BENCH_EXTENSION=${BENCH_EXTENSION:-auto}
BENCH_NOEXT=${BENCH_NOEXT:-0}
BENCH_BASE=${BENCH_BASE:-}
BENCH_IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-10000}
BENCH_STORM=${BENCH_STORM:-5000}
BENCH_CHART=${BENCH_CHART:-$ROOT/bench/results/tps-clients.png}
PYTHON=/usr/bin/python3  # Debian's, which has what idle.py needs; a pyenv python3 may not
. "$ROOT/scripts/pgcluster.sh"
. "$ROOT/bench/lib.sh"
PGBENCH=$PGBIN/pgbench
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date +%s)

for bin in "$PGMESH" "$PGMESH_TOKEN" ${BENCH_BASE:+"$BENCH_BASE"} "$PGBENCH" "$PYTHON" \
        "$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"; do
    [ -x "$bin" ] || { echo "bench: $bin not found (make all; make deps)" >&2; exit 2; }
done
has() { [[ " $BENCH_WORKLOADS " == *" $1 "* ]]; }
if [ "$BENCH_EXTENSION" = auto ]; then
    BENCH_EXTENSION=0
    [ -f "$("$PGBIN/pg_config" --sharedir)/extension/pgmesh.control" ] &&
        [ -f "$("$PGBIN/pg_config" --pkglibdir)/pgmesh.so" ] && BENCH_EXTENSION=1
fi
[ "$BENCH_EXTENSION" = 1 ] || BENCH_NOEXT=0
# 10,000 idle clients need as many descriptors in each pooler (which inherit this limit).
ulimit -n "$(ulimit -Hn)"

RUN=$(mktemp -d /tmp/pgmesh-bench.XXXXXX)
chmod 755 "$RUN"
mkdir -p "$RUN/log"
trap teardown EXIT
trap 'exit 130' INT TERM

pw=$(openssl rand -hex 16)
(umask 077 && : > "$RUN/pgpass")
declare -a HS_TOKEN RS_TOKEN
make_tokens

echo "== PostgreSQL 15, pgbench -i -s $BENCH_SCALE, rls_accounts"
start_cluster pg
PG_PORT=$CLUSTER_PORT
MAIN_PORT=$PG_PORT
if [ "$BENCH_EXTENSION" = 1 ]; then
    # Its own cluster so that direct and PgBouncer run on a server without the extension's hooks.
    echo "== a second PostgreSQL 15 preloading the pgmesh extension"
    mkdir -p "$RUN/pgx"
    install -m 600 "$RUN/server.key" "$RUN/pgx/pgmesh.key"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$RUN/pgx" "$RUN/pgx/pgmesh.key"
    start_cluster pgx shared_preload_libraries=pgmesh "pgmesh.key_file=$RUN/pgx/pgmesh.key"
    MAIN_PORT=$CLUSTER_PORT
    pgcluster_psql "$RUN/pgx" "$MAIN_PORT" -d bench -c 'CREATE EXTENSION pgmesh' > /dev/null
    MESH_LABEL="pgmesh+ext"
else
    MESH_LABEL="pgmesh"
fi

echo "== PgBouncer (transaction pooling, pool 20, scram-sha-256)"
start_pgbouncer pgbouncer scram-sha-256 1000
PB_PORT=$BOUNCER_PORT PB_PID=$BOUNCER_PID

echo "== $MESH_LABEL (transaction pooling, pool 20, HS256; and an RS256 one for connect-rs256)"
start_pgmesh pgmesh "$PGMESH" "$MAIN_PORT" "$BENCH_EXTENSION" hs
MESH_PORT=$MESH_PORT_ MESH_PID=$MESH_PID_
start_pgmesh pgmesh-rs "$PGMESH" "$MAIN_PORT" "$BENCH_EXTENSION" rs
RS_PORT=$MESH_PORT_ RS_PID=$MESH_PID_
if [ "$BENCH_NOEXT" = 1 ]; then
    start_pgmesh pgmesh-noext "$PGMESH" "$PG_PORT" 0 hs
    NOEXT_PORT=$MESH_PORT_ NOEXT_PID=$MESH_PID_
fi
if has workers; then
    start_pgmesh pgmesh-workers "$PGMESH" "$MAIN_PORT" "$BENCH_EXTENSION" hs 1
    WORKERS_PORT=$MESH_PORT_ WORKERS_PID=$MESH_PID_
fi
if [ -n "$BENCH_BASE" ]; then
    start_pgmesh base "$BENCH_BASE" "$MAIN_PORT" "$BENCH_EXTENSION" hs
    BASE_PORT=$MESH_PORT_ BASE_PID=$MESH_PID_
fi

# The RLS policy must hold: tenant t0 sees its eighth of the rows through pgmesh, none without claims.
nrows=$((BENCH_SCALE * 100000))
seen=$(PGPASSWORD=${HS_TOKEN[0]} PGSSLMODE=disable timeout 60 "$PGBIN/psql" -X -A -t -h 127.0.0.1 \
    -p "$MESH_PORT" -U analyst -d bench -c 'SELECT count(*) FROM rls_accounts')
unseen=$(PGPASSWORD=$pw PGSSLMODE=disable timeout 60 "$PGBIN/psql" -X -A -t -h 127.0.0.1 -p "$PG_PORT" \
    -U bench_user -d bench -c 'SELECT count(*) FROM rls_accounts')
if [ "$seen" != $((nrows / 8)) ] || [ "$unseen" != 0 ]; then
    echo "bench: rls_accounts: tenant t0 sees $seen rows through pgmesh (want $((nrows / 8))), $unseen without claims (want 0)" >&2
    exit 1
fi

# rls-read: tenant t0's rows are aid = 8k + 1. Through pgmesh only the SELECT (it sets the claims);
# direct and through PgBouncer the client sets them itself, in its own transaction.
cat > "$RUN/rls-pgmesh.sql" <<EOF
\set aid 8 * random(0, $((nrows / 8 - 1))) + 1
SELECT abalance FROM rls_accounts WHERE aid = :aid;
EOF
cat > "$RUN/rls-claims.sql" <<EOF
\set aid 8 * random(0, $((nrows / 8 - 1))) + 1
BEGIN;
SET LOCAL request.jwt.claim.tenant = 't0';
SET LOCAL request.jwt.claim.role = 'regional_analyst';
SELECT abalance FROM rls_accounts WHERE aid = :aid;
COMMIT;
EOF

CLK_TCK=$(getconf CLK_TCK)
MT_PROCS=8

# args_of TEST TARGET: pgbench's arguments (one process; mt runs MT_PROCS of them).
args_of() {
    case $1 in
        select-*) local m=${1#select-} c
                  c=${m##*-c}; m=${m%-c*}
                  echo "-n -S -M $m -c $c -j 2 -T $BENCH_T" ;;
        rls-read-c64) case $2 in
                          direct|pgbouncer) echo "-n -M simple -c 64 -j 2 -T $BENCH_T -f $RUN/rls-claims.sql" ;;
                          *) echo "-n -M simple -c 64 -j 2 -T $BENCH_T -f $RUN/rls-pgmesh.sql" ;;
                      esac ;;
        mt-select-c64) echo "-n -S -c $((64 / MT_PROCS)) -j 1 -T $BENCH_T" ;;
        workers-select-c*) echo "-n -S -M simple -c ${1##*-c} -j 2 -T $BENCH_T" ;;
        rate-*) local m=${1#rate-}
                echo "-n -S -M ${m%-c*} -c ${m##*-c} -j 2 -T $BENCH_T -R $BENCH_RATE" ;;
        connect-*) echo "-n -S -C -c 8 -j 2 -T $BENCH_T" ;;
    esac
}
targets_of() {
    local t="direct pgbouncer pgmesh"
    case $1 in
        *prepared*) t="direct pgmesh" ;;  # PgBouncer 1.18: no prepared statements in transaction pooling
        connect-rs256) echo pgmesh; return ;;  # direct and PgBouncer log in the same way as in connect-hs256
        workers-select-c*) echo "direct pgbouncer pgmesh pgmesh-workers"; return ;;
        rate-*) t="pgbouncer pgmesh" ;;  # the same rate for all: direct has no pooler CPU to compare
    esac
    [ "$BENCH_NOEXT" = 1 ] && t="$t pgmesh-noext"
    echo "$t${BENCH_BASE:+ base}"
}
label() {
    case $1 in
        pgmesh) echo "$MESH_LABEL" ;;
        pgmesh-workers) echo "$MESH_LABEL workers=1" ;;
        *) echo "$1" ;;
    esac
}

# run_one TEST TARGET: prints "tps p50_ms p99_ms cpu" for one run (FAILED four times if it failed);
# cpu is the pooler's CPU seconds per 10,000 transactions ("-" straight to PostgreSQL).
run_one() {
    local test=$1 target=$2 port user pid='' k
    local -a pass
    case $target in
        direct) port=$PG_PORT user=bench_user pid= ;;
        pgbouncer) port=$PB_PORT user=bench_user pid=$PB_PID ;;
        pgmesh) if [ "$test" = connect-rs256 ]; then port=$RS_PORT pid=$RS_PID; else port=$MESH_PORT pid=$MESH_PID; fi
                user=analyst ;;
        pgmesh-noext) port=$NOEXT_PORT user=analyst pid=$NOEXT_PID ;;
        pgmesh-workers) port=$WORKERS_PORT user=analyst pid=$WORKERS_PID ;;
        base) port=$BASE_PORT user=analyst pid=$BASE_PID ;;
    esac
    local procs=1
    [ "$test" = mt-select-c64 ] && procs=$MT_PROCS
    for k in $(seq 0 $((procs - 1))); do
        case $target in
            direct|pgbouncer) pass[k]=$pw ;;
            *) if [ "$test" = connect-rs256 ]; then pass[k]=${RS_TOKEN[k]}; else pass[k]=${HS_TOKEN[k]}; fi ;;
        esac
    done
    local id out t0 t1 ok=1 sw0=''
    id=$test-$target-$(date +%s%N)
    # How many multi-tenant transactions began on another tenant's server connection.
    [ "$test" = mt-select-c64 ] && [ -n "$pid" ] && [ "$target" != pgbouncer ] && sw0=$(mesh_switches "$port")
    t0=$(cpu_ticks "$pid")
    local -a bg=()
    for k in $(seq 0 $((procs - 1))); do
        # shellcheck disable=SC2046
        PGPASSWORD=${pass[k]} PGSSLMODE=disable timeout $((BENCH_T + 120)) "$PGBENCH" -h 127.0.0.1 \
            -p "$port" -U "$user" $(args_of "$test" "$target") --log --log-prefix="$RUN/log/$id-$k" \
            bench > "$RUN/log/$id-$k.out" 2>&1 &
        bg+=($!)
    done
    for k in "${bg[@]}"; do wait "$k" || ok=0; done
    t1=$(cpu_ticks "$pid")
    if [ -n "$sw0" ]; then
        local sw1
        sw1=$(mesh_switches "$port")
        echo "$sw0 $sw1" | awk '{ print $3 - $1, $4 - $2 }' >> "$RUN/switches-$target"
    fi
    if [ "$ok" = 0 ] || grep -q 'aborted' "$RUN/log/$id"-*.out; then
        echo "bench: pgbench $test $target failed:" >&2
        tail -n 5 "$RUN/log/$id"-*.out >&2
        echo "FAILED FAILED FAILED FAILED"
        rm -f "$RUN/log/$id"-*
        return
    fi
    # Latency percentiles from the per-transaction logs (third field, microseconds).
    local lat
    lat=$(cat "$RUN/log/$id"-*.[0-9]* | awk '{ print $3 }' | sort -n -S 64M |
          awk '{ a[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
                 i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
                 i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
                 printf "%.2f %.2f", a[i50] / 1000, a[i99] / 1000 }')
    local res
    res=$(cat "$RUN/log/$id"-*.out | awk -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" -v pid="$pid" -v lat="$lat" '
        /^tps = / { tps += $3; seen++ } /^number of transactions actually processed: / { n += $6 }
        END { if (seen != procs) { print "FAILED FAILED FAILED FAILED"; exit }
              cpu = (pid == "" || n == 0) ? "-" : sprintf("%.3f", ticks / hz / n * 10000)
              printf "%.1f %s %s\n", tps, lat, cpu }' procs="$procs")
    [ "${res%% *}" = FAILED ] && { echo "bench: pgbench $test $target printed no tps:" >&2; tail -n 5 "$RUN/log/$id"-*.out >&2; }
    echo "$res"
    [ "${BENCH_KEEP_LOGS:-0}" = 1 ] || rm -f "$RUN/log/$id"-*
}

tests=()
if has select; then
    for c in $BENCH_CLIENTS; do for m in $BENCH_MODES; do tests+=("select-$m-c$c"); done; done
fi
has rate && tests+=(rate-simple-c8 rate-extended-c8)
has rls && tests+=(rls-read-c64)
has mt && tests+=(mt-select-c64)
has connect && tests+=(connect-hs256 connect-rs256)
has workers && tests+=(workers-select-c8 workers-select-c64)

# rotated ROUND TARGET...: the targets in turn, round r starting at the r-th, so that no target
# always runs first after a change of workload or right after the same other one.
rotated() {
    local r=$1
    shift
    local -a a=("$@")
    local i n=${#a[@]}
    for i in $(seq 0 $((n - 1))); do echo "${a[(i + r - 1) % n]}"; done
}

# Every pooler opens its whole pool and every path runs once before anything is measured: the
# first measured run was otherwise also the one paying for 20 server logins and cold caches.
echo "== warm-up: 2 s of select-simple-c64 through each pooler, not measured"
for target in pgbouncer pgmesh $([ "$BENCH_NOEXT" = 1 ] && echo pgmesh-noext) ${BENCH_BASE:+base} \
        $(has workers && echo pgmesh-workers); do
    BENCH_T=2 run_one select-simple-c64 "$target" > /dev/null
done

declare -A tps p50 p99 cpu
failed=0
for t in "${tests[@]}"; do
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        # shellcheck disable=SC2046
        for target in $(rotated "$r" $(targets_of "$t")); do
            read -r tps["$t,$target,$r"] p50["$t,$target,$r"] p99["$t,$target,$r"] cpu["$t,$target,$r"] \
                < <(run_one "$t" "$target")
            [ "${tps[$t,$target,$r]}" = FAILED ] && failed=1
            printf '  %-22s %-12s round %d: tps %9s, p50 %7s ms, p99 %7s ms, pooler CPU %6s s/10k tx\n' "$t" \
                "$(label "$target")" "$r" "${tps[$t,$target,$r]}" "${p50[$t,$target,$r]}" \
                "${p99[$t,$target,$r]}" "${cpu[$t,$target,$r]}"
        done
    done
done

# median KEY ARRAY: the median over the rounds (n/a when not run, FAILED when a round failed).
median() {
    local -n a=$2
    local r v vals=()
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        v=${a[$1,$r]:-}
        [ -z "$v" ] && { echo "n/a"; return; }
        [ "$v" = FAILED ] && { echo FAILED; return; }
        [ "$v" = - ] && { echo -; return; }
        vals+=("$v")
    done
    printf '%s\n' "${vals[@]}" | median_of
}
# median_of: the median of the numbers on stdin, one a line.
median_of() {
    sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "-"; else printf "%.2f", a / b }'; }
# paired KEY REF ARRAY: the median over the rounds of KEY's value over REF's in the same round.
# A round runs every target back to back, so the pair shares the machine's state of that minute;
# the speed of this shared machine drifts between rounds by more than the differences measured.
paired() {
    local -n p=$3
    local r a b vals=()
    for r in $(seq 1 "$BENCH_ROUNDS"); do
        a=${p[$1,$r]:-} b=${p[$2,$r]:-}
        if ! [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] || ! awk -v b="$b" 'BEGIN { exit !(b > 0) }'; then
            echo -
            return
        fi
        vals+=("$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')")
    done
    printf '%.2f\n' "$(printf '%s\n' "${vals[@]}" | median_of)"
}
ref_of() { case $1 in connect-rs256) echo connect-hs256 ;; *) echo "$1" ;; esac; }

# The memory figures come from fresh instances (start = the process's own start), one of each,
# PgBouncer with md5: its SCRAM costs tens of ms per login on this kind of machine, which would
# make 15,000 logins take minutes and measures nothing about memory.
declare -A mem
if has memory; then
    echo "== memory: $BENCH_STORM-client storm, then $BENCH_IDLE_CLIENTS idle clients, on fresh instances"
    start_pgmesh pgmesh-mem "$PGMESH" "$MAIN_PORT" "$BENCH_EXTENSION" hs
    if out=$(timeout 900 "$PYTHON" "$ROOT/bench/idle.py" --port "$MESH_PORT_" --user analyst \
            --password "${HS_TOKEN[0]}" --pid "$MESH_PID_" --clients "$BENCH_IDLE_CLIENTS" --storm "$BENCH_STORM"); then
        while IFS='=' read -r k v; do mem[pgmesh,$k]=$v; done <<< "$out"
    else
        echo "bench: memory test through pgmesh failed" >&2; failed=1
    fi
    kill -TERM "$MESH_PID_" 2> /dev/null; wait "$MESH_PID_" || true
    start_pgbouncer pgbouncer-mem md5 $((BENCH_IDLE_CLIENTS + 1000))
    if out=$(timeout 900 "$PYTHON" "$ROOT/bench/idle.py" --port "$BOUNCER_PORT" --user bench_user \
            --password "$pw" --pid "$BOUNCER_PID" --clients "$BENCH_IDLE_CLIENTS" --storm "$BENCH_STORM"); then
        while IFS='=' read -r k v; do mem[pgbouncer,$k]=$v; done <<< "$out"
    else
        echo "bench: memory test through PgBouncer failed" >&2; failed=1
    fi
    kill -TERM "$BOUNCER_PID" || true
    for k in pgmesh pgbouncer; do
        echo "  $k: $(for f in rss_start rss_after_storm storm_seconds rss_before_idle rss_held idle_seconds rss_released idle_bytes_per_client; do printf '%s=%s ' "$f" "${mem[$k,$f]:-?}"; done)"
    done
fi

table=$RUN/table.md
minutes=$(( ($(date +%s) - STARTED + 59) / 60 ))
{
    echo
    echo "pgmesh $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $(date -u +'%Y-%m-%d %H:%M UTC'); $(machine)"
    echo "$MESH_LABEL: $([ "$BENCH_EXTENSION" = 1 ] && echo 'pgmesh with server_enforcement = require, on a PostgreSQL preloading the pgmesh extension' || echo 'pgmesh without the server extension (plain SETs)'); ${BENCH_T}s per run, median of $BENCH_ROUNDS interleaved rounds (the ratio columns: the median of each round's ratio); $minutes min in all"
    echo
    echo "| workload | target | tps | p50 ms | p99 ms | pooler CPU s/10k tx | tps vs PgBouncer | tps vs direct | CPU vs PgBouncer |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for t in "${tests[@]}"; do
        ref=$(ref_of "$t")
        for target in $(targets_of "$t"); do
            m=$(median "$t,$target" tps) c=$(median "$t,$target" cpu)
            case $target in
                direct|pgbouncer) vs_pb=- vs_d=- vs_c=- ;;
                *) vs_pb=$(paired "$t,$target" "$ref,pgbouncer" tps)
                   vs_d=$(paired "$t,$target" "$ref,direct" tps)
                   vs_c=$(paired "$t,$target" "$ref,pgbouncer" cpu) ;;
            esac
            echo "| $t | $(label "$target") | $m | $(median "$t,$target" p50) | $(median "$t,$target" p99) | $c | $vs_pb | $vs_d | $vs_c |"
        done
    done
    if has memory; then
        echo
        echo "| memory (fresh instances, VmRSS) | $MESH_LABEL | PgBouncer (md5) | pgmesh/PgBouncer |"
        echo "| --- | ---: | ---: | ---: |"
        row() { echo "| $1 | ${mem[pgmesh,$2]:-?} | ${mem[pgbouncer,$2]:-?} | $(ratio "${mem[pgmesh,$2]:-}" "${mem[pgbouncer,$2]:-}") |"; }
        row "RSS at start (KiB)" rss_start
        row "RSS after a $BENCH_STORM-client connect/query/disconnect storm (KiB)" rss_after_storm
        for k in pgmesh pgbouncer; do
            mem[$k,storm_growth]=$(( ${mem[$k,rss_after_storm]:-0} - ${mem[$k,rss_start]:-0} ))
        done
        row "storm growth (KiB)" storm_growth
        row "RSS with $BENCH_IDLE_CLIENTS idle clients logged in (KiB)" rss_held
        row "per idle client (bytes)" idle_bytes_per_client
        row "RSS after they disconnected (KiB)" rss_released
    fi
    for target in $(targets_of mt-select-c64); do
        [ -f "$RUN/switches-$target" ] || continue
        awk -v l="$(label "$target")" '{ s += $1; x += $2 } END { if (x) printf "\n%s, mt-select-c64: %.0f%% of the transactions began on a server connection another tenant used last (SHOW STATS claim_switches: %d of %d)\n", l, 100 * s / x, s, x }' "$RUN/switches-$target"
    done
    echo
    echo "Workloads (pgbench per process; through pgmesh the password is an HS256 token for tenant t0, role regional_analyst):"
    for t in "${tests[@]}"; do
        case $t in
            rls-read-c64) echo "- $t: $(args_of "$t" pgmesh) (through pgmesh); direct and PgBouncer: $(args_of "$t" direct), BEGIN, SET LOCAL of both claims, the SELECT, COMMIT" ;;
            mt-select-c64) echo "- $t: $MT_PROCS concurrent pgbench processes, each $(args_of "$t" pgmesh), through pgmesh each with the token of its own tenant (t0..t$((MT_PROCS - 1))), all sharing one pool" ;;
            connect-rs256) echo "- $t: $(args_of "$t" pgmesh) with RS256 tokens (2048-bit key) to a second pgmesh; ratios against connect-hs256's direct and PgBouncer" ;;
            rate-*) echo "- $t: $(args_of "$t" pgmesh): a fixed rate every target keeps, so the CPU per transaction compares the same load (at full speed it follows each run's rate)" ;;
            workers-select-c*) echo "- $t: $(args_of "$t" pgmesh), through pgmesh with its default workers = auto ($(nproc) here; the pool of 20 shared out between them, CPU summed over its processes) and a second pgmesh with workers = 1" ;;
            *) echo "- $t: $(args_of "$t" pgmesh)" ;;
        esac
    done
} | sed "s|$RUN/||g" > "$table"  # the temp dir is gone by the time anyone reads the table
cat "$table"
[ -n "${BENCH_OUT:-}" ] && cp "$table" "$BENCH_OUT"

# Chart: TPS against clients, one panel per protocol mode, one line per target.
if has select && command -v gnuplot > /dev/null; then
    for m in $BENCH_MODES; do
        ts=$(targets_of select-simple-c8)  # the same columns in every panel, so the same colours
        { printf 'clients'; for target in $ts; do printf ' %s' "$(label "$target")"; done; echo
          for c in $BENCH_CLIENTS; do
              printf '%s' "$c"
              for target in $ts; do v=$(median "select-$m-c$c,$target" tps); [[ $v =~ ^[0-9.]+$ ]] || v=NaN; printf ' %s' "$v"; done
              echo
          done; } > "$RUN/chart-$m.dat"
    done
    mkdir -p "$(dirname "$BENCH_CHART")"
    if gnuplot -e "modes='$BENCH_MODES'; dir='$RUN'; out='$BENCH_CHART'; heading='$(head -n 2 "$table" | tail -n 1 | cut -d';' -f1)'" \
            "$ROOT/bench/chart.gp" 2> "$RUN/gnuplot.err"; then
        echo "bench: chart in $BENCH_CHART"
    else
        echo "bench: gnuplot failed:" >&2; cat "$RUN/gnuplot.err" >&2; failed=1
    fi
fi

for f in "$RUN"/pgmesh*.log "$RUN"/base.log; do
    [ -f "$f" ] || continue
    if grep -qE 'Sanitizer|runtime error:' "$f"; then echo "bench: sanitizer report in $f" >&2; failed=1; fi
    # The console's commands are logged whatever log_level says (an audit trail): not news here.
    news=$(grep -v 'admin console (role bench_admin)' "$f" || true)
    n=$(grep -c . <<< "$news" || true)
    [ "$n" -gt 0 ] && { echo "bench: $f has $n lines (log_level = warning); the first:" >&2; head -n 3 <<< "$news" >&2; }
done
[ "$failed" = 0 ] || { echo "bench: some runs failed (see above)" >&2; exit 1; }
