# Throwaway PostgreSQL 15 clusters for the demo, the integration tests and the benchmark.
# Source this file; it defines functions only and changes no shell options.
#
#   pgcluster_start DIR PORT [NAME=VALUE ...]  initdb (if DIR/data is empty) and start; extra
#                                             postgresql.conf settings as NAME=VALUE
#   pgcluster_stop DIR                         fast shutdown (immediate, then kill, on timeout)
#   pgcluster_psql DIR PORT [psql args]        psql as superuser "postgres" over the Unix socket
#   pgcluster_socket_dir DIR                   the Unix socket directory of the cluster in DIR
#
# Layout of DIR: data/ (PGDATA), postgres.log, initdb.log, superuser.pass (the superuser's
# password for TCP), and the Unix socket (unless DIR is too long for one; then a short directory
# under /tmp, named in DIR/socket_dir). Authentication: trust on the Unix socket (reachable only by
# root and the postgres OS user), scram-sha-256 over TCP. Listens on 127.0.0.1 only; fsync off.
# As root, initdb and postgres run as the postgres OS user, which must be able to reach DIR.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGCLUSTER_START_TIMEOUT_S=${PGCLUSTER_START_TIMEOUT_S:-60}

# Runs a command as the postgres OS user when we are root, else as ourselves. From / so that an
# unreadable current directory does not trouble initdb or pg_ctl.
_pgc_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

pgcluster_socket_dir() {
    local dir=$1
    if [ -f "$dir/socket_dir" ]; then cat "$dir/socket_dir"; else printf '%s\n' "$dir"; fi
}

pgcluster_start() {
    if [ $# -lt 2 ]; then echo "usage: pgcluster_start DIR PORT [NAME=VALUE ...]" >&2; return 2; fi
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir" || return 1
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "pgcluster: the postgres OS user cannot reach $dir; give its parent directories" \
                 "o+x (e.g. chmod o+x $(dirname "$dir")) or use another directory" >&2
            return 1
        fi
    fi
    # A Unix socket path is limited to 107 bytes; ".s.PGSQL.NNNNN.lock" is the longest file.
    local sock=$dir
    if [ $(( ${#dir} + 20 )) -gt 100 ]; then
        sock=$(mktemp -d /tmp/pgsock.XXXXXX) || return 1
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$sock"
        printf '%s\n' "$sock" > "$dir/socket_dir"
    else
        rm -f "$dir/socket_dir"
    fi

    if [ ! -f "$dir/data/PG_VERSION" ]; then
        local pw
        pw=$(openssl rand -hex 16) || return 1
        (umask 077 && printf '%s\n' "$pw" > "$dir/superuser.pass")
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/superuser.pass"
        if ! _pgc_as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --pwfile="$dir/superuser.pass" \
                --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C \
                > "$dir/initdb.log" 2>&1; then
            echo "pgcluster: initdb failed; $dir/initdb.log says:" >&2
            tail -n 20 "$dir/initdb.log" >&2
            return 1
        fi
    fi
    # Our settings go last in postgresql.conf, so they win; rewritten on every start.
    local conf="$dir/data/postgresql.conf"
    sed -i '/^# pgcluster settings below/,$d' "$conf"
    {
        echo "# pgcluster settings below"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$sock'"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "password_encryption = 'scram-sha-256'"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        echo "log_connections = on"
        echo "log_disconnections = on"
        local kv
        for kv in "$@"; do
            echo "${kv%%=*} = '${kv#*=}'"
        done
    } >> "$conf"

    if ! _pgc_as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
            -t "$PGCLUSTER_START_TIMEOUT_S" start > "$dir/pg_ctl.log" 2>&1; then
        echo "pgcluster: PostgreSQL did not start on port $port within ${PGCLUSTER_START_TIMEOUT_S}s:" >&2
        tail -n 20 "$dir/pg_ctl.log" "$dir/postgres.log" >&2 2>/dev/null
        return 1
    fi
    local i
    for i in $(seq 1 50); do
        "$PGBIN/pg_isready" -q -h "$sock" -p "$port" -t 2 && return 0
        sleep 0.2
    done
    echo "pgcluster: PostgreSQL started but is not accepting connections on $sock port $port" >&2
    tail -n 20 "$dir/postgres.log" >&2
    return 1
}

pgcluster_stop() {
    if [ $# -lt 1 ]; then echo "usage: pgcluster_stop DIR" >&2; return 2; fi
    local dir=$1
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        if ! _pgc_as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
            _pgc_as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1
        fi
        if [ -f "$dir/data/postmaster.pid" ]; then
            local pid
            pid=$(head -n 1 "$dir/data/postmaster.pid")
            # Only a postgres process with this data directory; a stale pid file may name another.
            if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q postgres; then
                kill -9 "$pid" 2>/dev/null
            fi
            rm -f "$dir/data/postmaster.pid"
        fi
    fi
    if [ -f "$dir/socket_dir" ]; then
        local sock
        sock=$(cat "$dir/socket_dir")
        case $sock in /tmp/pgsock.*) rm -rf "$sock" ;; esac
        rm -f "$dir/socket_dir"
    fi
    return 0
}

pgcluster_psql() {
    if [ $# -lt 2 ]; then echo "usage: pgcluster_psql DIR PORT [psql args]" >&2; return 2; fi
    local dir=$1 port=$2
    shift 2
    PGCONNECT_TIMEOUT=10 psql -X -q -v ON_ERROR_STOP=1 \
        -h "$(pgcluster_socket_dir "$dir")" -p "$port" -U postgres "$@"
}

# Prints a loopback TCP port no socket uses: PREFERRED if free, else a random one in 20000..31999,
# below the ephemeral range (32768+) that outgoing connections use. Racy by nature (someone may
# take it before we bind); callers bind soon after, and pgcluster_start_free retries.
pgcluster_free_port() {
    local want=${1:-} p i
    for i in $(seq 1 200); do
        if [ -n "$want" ] && [ "$i" = 1 ]; then p=$want; else p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 )); fi  # below the ephemeral range (32768+)
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    echo "pgcluster: no free port found" >&2
    return 1
}

# pgcluster_start_free DIR PREFERRED_PORT|"" [NAME=VALUE ...]: pgcluster_start on a free port,
# trying another one (up to 5 times) when someone takes the port between the check and the bind.
# Sets PGCLUSTER_PORT.
pgcluster_start_free() {
    local dir=$1 want=$2 attempt port
    shift 2
    PGCLUSTER_PORT=
    for attempt in 1 2 3 4 5; do
        port=$(pgcluster_free_port "$want") || return 1
        want=
        [ -f "$dir/postgres.log" ] && : > "$dir/postgres.log"
        if pgcluster_start "$dir" "$port" "$@"; then
            PGCLUSTER_PORT=$port
            return 0
        fi
        grep -q 'Address already in use' "$dir/postgres.log" 2>/dev/null || return 1
        echo "pgcluster: port $port was taken meanwhile; trying another" >&2
    done
    return 1
}
