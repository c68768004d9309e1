# shellcheck shell=bash disable=SC2034,SC2153,SC2154  # sourced by run.sh, which sets and reads these
# Setup for bench/run.sh (sourced): the PostgreSQL clusters, PgBouncer and pgmesh instances, the
# keys and tokens. Everything it starts is recorded so that run.sh's teardown can stop it.

PIDS=()      # pgmesh instances, stopped by teardown
CLUSTERS=()  # cluster dirs, stopped by teardown
BOUNCERS=()  # PgBouncer dirs (their pid files), stopped by teardown

teardown() {
    local p d
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    for d in "${BOUNCERS[@]}"; do
        [ -f "$d/pgbouncer.pid" ] && kill -TERM "$(cat "$d/pgbouncer.pid")" 2>/dev/null
    done
    [ ${#BOUNCERS[@]} -gt 0 ] && sleep 0.5
    for d in "${CLUSTERS[@]}"; do pgcluster_stop "$d"; done
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "bench: kept $RUN"; else rm -rf "$RUN"; fi
}

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

# bench_db DIR PORT: database bench with pgbench's tables, rls_accounts (pgbench_accounts with a
# tenant t0..t7 per row, aid % 8, readable only under the matching request.jwt.claim.tenant) and
# bench_user's grants (password $pw).
bench_db() {
    pgcluster_psql "$1" "$2" -d postgres -v pw="$pw" <<'EOF'
CREATE ROLE bench_user LOGIN PASSWORD :'pw';
CREATE DATABASE bench;
EOF
    timeout 600 "$PGBENCH" -i -q -s "$BENCH_SCALE" -h "$(pgcluster_socket_dir "$1")" -p "$2" \
        -U postgres bench > "$RUN/pgbench-init-$2.txt" 2>&1 || { cat "$RUN/pgbench-init-$2.txt"; exit 1; }
    pgcluster_psql "$1" "$2" -d bench <<'EOF'
CREATE TABLE rls_accounts AS
    SELECT aid, 't' || ((aid - 1) % 8) AS tenant, abalance, filler FROM pgbench_accounts;
ALTER TABLE rls_accounts ADD PRIMARY KEY (aid);
ALTER TABLE rls_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON rls_accounts FOR SELECT
    USING (tenant = current_setting('request.jwt.claim.tenant', true));
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO bench_user;
GRANT USAGE ON SCHEMA public TO bench_user;
VACUUM ANALYZE;
EOF
}

# start_cluster NAME [NAME=VALUE ...]: a PostgreSQL 15 in $RUN/NAME with the bench database; sets
# CLUSTER_PORT.
start_cluster() {
    local name=$1
    shift
    pgcluster_start_free "$RUN/$name" "" max_connections=400 shared_buffers=256MB \
        log_connections=off log_disconnections=off "$@"
    CLUSTERS+=("$RUN/$name")
    CLUSTER_PORT=$PGCLUSTER_PORT
    bench_db "$RUN/$name" "$CLUSTER_PORT"
    echo "127.0.0.1:$CLUSTER_PORT:bench:bench_user:$pw" >> "$RUN/pgpass"
}

# start_pgbouncer NAME AUTH_TYPE MAX_CLIENTS: PgBouncer in transaction pooling, pool 20, in front
# of the main cluster; sets BOUNCER_PORT and BOUNCER_PID.
start_pgbouncer() {
    local dir=$RUN/$1
    BOUNCER_PORT=$(pgcluster_free_port)
    mkdir -p "$dir"
    cat > "$dir/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = $2
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = $3
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
    # For SCRAM the userlist holds PostgreSQL's own verifier, as PgBouncer's docs advise: a
    # plaintext password there makes PgBouncer derive the salted password (4096 PBKDF2 rounds)
    # at every login, tens of ms of its one thread per login on a loaded 2-CPU machine, so the
    # initial logins of 256 clients would eat most of a run. With the verifier it checks the
    # proof with a few HMACs and logs in to PostgreSQL with the client's key.
    local secret=$pw
    [ "$2" = scram-sha-256 ] && secret=$(pgcluster_psql "$RUN/pg" "$PG_PORT" -d postgres -A -t \
        -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench_user'")
    echo "\"bench_user\" \"$secret\"" > "$dir/userlist.txt"
    chmod 600 "$dir/userlist.txt"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    BOUNCERS+=("$dir")
    # runuser's PAM session resets the soft fd limit to 1024; 10,000 clients need more.
    # shellcheck disable=SC2016  # expanded by that sh
    as_postgres sh -c 'ulimit -n "$(ulimit -Hn)" && exec pgbouncer -d -q "$1"' sh "$dir/pgbouncer.ini"
    wait_port "$BOUNCER_PORT" "PgBouncer $1"
    local i
    for i in $(seq 1 50); do [ -s "$dir/pgbouncer.pid" ] && break; sleep 0.1; done
    BOUNCER_PID=$(cat "$dir/pgbouncer.pid")
}

# start_pgmesh NAME BINARY CLUSTER_PORT EXT(0|1) KEY(hs|rs): pgmesh in transaction pooling, pool
# 20, TLS off like the others, one role with statement_timeout and work_mem so every transaction
# carries the four settings pgmesh manages; EXT=1 requires the server extension (claims and limits
# through pgmesh.apply), EXT=0 turns it off (plain SETs); WORKERS worker processes (default: the
# product's default, one per CPU).
# Sets MESH_PORT_ and MESH_PID_.
start_pgmesh() {
    local name=$1 bin=$2 cport=$3 ext=$4 key=$5 workers=${6:-auto} jwt enforcement
    MESH_PORT_=$(pgcluster_free_port)
    if [ "$key" = rs ]; then
        jwt="algorithms = RS256
public_key_file = $RUN/jwt-rs.pub"
    else
        jwt="algorithms = HS256
secret_file = $RUN/jwt.secret"
    fi
    if [ "$ext" = 1 ]; then
        enforcement="server_enforcement = require
server_key_file = $RUN/server.key"
    else
        enforcement="server_enforcement = off"
    fi
    cat > "$RUN/$name.ini" <<EOF
[pgmesh]
listen_addr = 127.0.0.1
listen_port = $MESH_PORT_
unix_socket_dir =
pool_mode = transaction
client_tls = disable
default_pool_size = 20
max_client_conn = $((BENCH_IDLE_CLIENTS + 1000))
query_wait_timeout = 30s
server_idle_timeout = 10m
server_connect_timeout = 15s
log_level = warning
workers = $workers
admin_roles = bench_admin
$enforcement

[jwt]
$jwt
issuer =
audience =
leeway = 30s
tenant_claim = tenant
role_claim = role

[databases]
bench = host=127.0.0.1 port=$cport dbname=bench passfile=$RUN/pgpass

[roles]
regional_analyst = server_user=bench_user statement_timeout=30s work_mem=64MB
EOF
    # In a session of its own, as PgBouncer -d is (it calls setsid) and as a service under systemd
    # is in a cgroup of its own: with the kernel's autogroup scheduling (sched_autogroup_enabled)
    # the CPU is shared between sessions first, and PostgreSQL's backends are each a session. Left
    # in this script's session, pgmesh's workers would share one session's share with every
    # pgbench process, and PgBouncer would not.
    setsid "$bin" -c "$RUN/$name.ini" > "$RUN/$name.log" 2>&1 < /dev/null &
    MESH_PID_=$!
    PIDS+=("$MESH_PID_")
    wait_port "$MESH_PORT_" "pgmesh $name"
    # setsid execs in place unless it leads a process group already: the CPU figures need this pid.
    [ "$(cat "/proc/$MESH_PID_/comm" 2>/dev/null)" = "$(basename "$bin" | cut -c1-15)" ] ||
        { echo "bench: pgmesh $name is not process $MESH_PID_" >&2; exit 1; }
}

# Keys and tokens: one HS256 secret shared by the HS256 instances, an RSA key pair for the RS256
# one, tokens for tenants t0..t7 (role regional_analyst) of each kind.
make_tokens() {
    (umask 077 && openssl rand -hex 32 > "$RUN/jwt.secret" && openssl rand -hex 32 > "$RUN/server.key")
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$RUN/jwt-rs.key" 2> /dev/null
    openssl pkey -in "$RUN/jwt-rs.key" -pubout -out "$RUN/jwt-rs.pub"
    ADMIN_TOKEN=$("$PGMESH_TOKEN" --secret-file "$RUN/jwt.secret" --tenant ops --role bench_admin --ttl 36000)
    local i
    for i in $(seq 0 7); do
        HS_TOKEN[i]=$("$PGMESH_TOKEN" --secret-file "$RUN/jwt.secret" --tenant "t$i" --role regional_analyst --ttl 36000)
        RS_TOKEN[i]=$("$PGMESH_TOKEN" --private-key "$RUN/jwt-rs.key" --tenant "t$i" --role regional_analyst --ttl 36000)
    done
}

# claim_switches and total_xact_count of an HS256 pgmesh so far, from its console's SHOW STATS.
mesh_switches() {
    PGPASSWORD=$ADMIN_TOKEN PGSSLMODE=disable timeout 30 "$PGBIN/psql" -X -A -t -F ' ' -h 127.0.0.1 -p "$1" \
        -U bench -d pgmesh -c 'SHOW STATS' | awk '{ x += $2; s += $19 } END { print s + 0, x + 0 }'
}

# CPU time (user + system, in clock ticks) a process and its live children (pgmesh's workers) have
# used so far; 0 when there is no process.
cpu_ticks() {
    [ -n "$1" ] || { echo 0; return; }
    local p t=0
    for p in "$1" $(pgrep -P "$1"); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

machine() {
    echo "$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '{ print int($2 / 1024) }' <(grep MemTotal /proc/meminfo)) MiB," \
        "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), PgBouncer $(pgbouncer --version | head -n 1 | awk '{print $2}')," \
        "load average at start $LOAD0, autogroup scheduling $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo -)"
}
