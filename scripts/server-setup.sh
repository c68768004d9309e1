#!/usr/bin/env bash
# Sets up server-side enforcement on an existing PostgreSQL 15 cluster, on the database host:
# builds and installs the pgmesh extension, gives the cluster a shared key file, preloads the
# library (restarting only when the preload list changed), sets pgmesh.pinned_settings when asked,
# runs CREATE EXTENSION in each database and prints the lines for pgmesh's config. Running it again
# changes nothing. --check changes nothing at all and says what is missing. Never prints the key
# itself.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/server-setup.sh --pgdata DIR --port PORT --database DB [--database DB ...]
                               [--key-out FILE] [--superuser NAME] [--pinned NAME[,NAME...]] [--check]

Sets up the pgmesh extension on a running PostgreSQL 15 cluster, so that the claim settings are
superuser-only and pgmesh sets claims and limits through pgmesh.apply(). Run it as root on the
database host:

  1. builds extension/ with the cluster's pg_config and installs it (apt-get installs
     postgresql-server-dev-15 if its headers are missing); skipped when already installed as built
  2. makes DIR/pgmesh.key (a random 32-byte hex key, owned by the owner of DIR, mode 600), or keeps
     the valid key file pgmesh.key_file already names
  3. ALTER SYSTEM SET pgmesh.key_file, and adds pgmesh to shared_preload_libraries (keeping what
     is there); restarts the cluster with pg_ctl, as its owner, only if pgmesh was not preloaded;
     with --pinned, ALTER SYSTEM SET pgmesh.pinned_settings to those names (a reload, no restart)
  4. CREATE EXTENSION IF NOT EXISTS pgmesh in each --database (ALTER EXTENSION pgmesh UPDATE
     where an older version is there)
  5. copies the key to --key-out (default ./pgmesh-server.key, mode 600) for pgmesh's host and
     prints the lines to add to [pgmesh] in pgmesh's config

Options:
  --pgdata DIR      the cluster's data directory (its owner is the cluster's OS user)
  --port PORT       the port it listens on (psql connects over its Unix socket)
  --database DB     a database pgmesh serves; repeat for each
  --key-out FILE    where to copy the key for pgmesh (default ./pgmesh-server.key)
  --superuser NAME  database superuser to connect as (default: the cluster's OS user)
  --pinned NAMES    the settings pgmesh's [roles] pin (pin.NAME=VALUE), comma-separated, e.g.
                    hash_mem_multiplier,max_parallel_workers_per_gather: pgmesh.apply() sets and
                    caps only the settings pgmesh.pinned_settings lists (besides statement_timeout
                    and work_mem). Repeatable; the list replaces what the server has. Without it
                    the server's list is kept and printed
  --check           change nothing; report what is missing and exit 1 if anything is
  --help            this text

Env: PGBIN (default /usr/lib/postgresql/<version>/bin).
Exit status: 0 done (or, with --check, nothing missing), 1 failed or something missing, 2 usage.
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGDATA_ARG=
PORT=
DATABASES=()
KEY_OUT=./pgmesh-server.key
KEY_OUT_GIVEN=0
SUPERUSER=
CHECK=0
PINNED=()

die() {
    printf 'server-setup: %s\n' "$*" >&2
    exit 1
}
usage_error() {
    printf 'server-setup: %s\n(see scripts/server-setup.sh --help)\n' "$*" >&2
    exit 2
}
say() { printf '%s\n' "$*"; }

while [ $# -gt 0 ]; do
    case $1 in
        --pgdata | --port | --database | --key-out | --superuser | --pinned)
            [ $# -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a value"
            case $1 in
                --pgdata) PGDATA_ARG=$2 ;;
                --port) PORT=$2 ;;
                --database) DATABASES+=("$2") ;;
                --key-out) KEY_OUT=$2 KEY_OUT_GIVEN=1 ;;
                --superuser) SUPERUSER=$2 ;;
                --pinned) IFS=, read -r -a names <<< "$2"; PINNED+=("${names[@]}") ;;
            esac
            shift 2
            ;;
        --check) CHECK=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done
[ -n "$PGDATA_ARG" ] || usage_error "--pgdata is required"
[ -n "$PORT" ] || usage_error "--port is required"
[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || usage_error "--port: not a port: $PORT"
[ ${#DATABASES[@]} -gt 0 ] || usage_error "at least one --database is required"
# Setting names as pgmesh's [roles] accepts them after pin. (lower case, at most one dot); the list
# is kept sorted and without repeats, so that the same names in another order change nothing.
PINNED_LIST=
if [ ${#PINNED[@]} -gt 0 ]; then
    for n in "${PINNED[@]}"; do
        n=${n//[[:space:]]/}
        [[ $n =~ ^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$ ]] ||
            usage_error "--pinned: \"$n\" is not a setting name (lower case letters, digits and _, at most one dot)"
        case $n in
            statement_timeout | work_mem) usage_error "--pinned: $n is always set by pgmesh.apply(); leave it out" ;;
        esac
    done
    PINNED_LIST=$(printf '%s\n' "${PINNED[@]//[[:space:]]/}" | sort -u | paste -sd, -)
fi

[ -d "$PGDATA_ARG" ] || die "$PGDATA_ARG: no such directory"
PGDATA=$(cd "$PGDATA_ARG" && pwd -P)
[ -f "$PGDATA/PG_VERSION" ] || die "$PGDATA is not a PostgreSQL data directory (no PG_VERSION)"
PG_MAJOR=$(cat "$PGDATA/PG_VERSION")
[ "$PG_MAJOR" = 15 ] || die "$PGDATA is a PostgreSQL $PG_MAJOR cluster; the pgmesh extension is built for PostgreSQL 15"
PGBIN=${PGBIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=$PGBIN/pg_config
OWNER=$(stat -c %U "$PGDATA")
OWNER_UID=$(stat -c %u "$PGDATA")
OWNER_GID=$(stat -c %g "$PGDATA")
SUPERUSER=${SUPERUSER:-$OWNER}
IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
if [ "$IS_ROOT" = 0 ] && [ "$(id -u)" != "$OWNER_UID" ]; then
    die "run as root (or as $OWNER, the owner of $PGDATA, when nothing needs installing)"
fi
for bin in psql pg_ctl; do
    [ -x "$PGBIN/$bin" ] || die "$PGBIN/$bin not found (PostgreSQL $PG_MAJOR's binaries; set PGBIN)"
done

# need_root WHAT: stops with a clear message when WHAT needs root and we are not.
need_root() {
    [ "$IS_ROOT" = 1 ] || die "$1 needs root: run scripts/server-setup.sh as root"
}

# From / so that an unreadable current directory does not trouble psql or pg_ctl.
as_owner() {
    if [ "$IS_ROOT" = 1 ]; then
        (cd / && runuser -u "$OWNER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# --- the running cluster: its socket directory from postmaster.pid (line 5), its port (line 4) ---
PIDFILE=$PGDATA/postmaster.pid
SOCKET_DIR=
cluster_running() {
    [ -f "$PIDFILE" ] && as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status > /dev/null 2>&1 || return 1
    local pid_port
    pid_port=$(sed -n 4p "$PIDFILE")
    SOCKET_DIR=$(sed -n 5p "$PIDFILE")
    [ "$pid_port" = "$PORT" ] || die "the cluster in $PGDATA listens on port $pid_port, not $PORT"
    [ -n "$SOCKET_DIR" ] || die "the cluster in $PGDATA has no Unix socket (unix_socket_directories is empty)"
}

# sql DB [psql args]: psql as the superuser over the Unix socket, unaligned, no headers.
sql() {
    local db=$1
    shift
    as_owner env PGCONNECT_TIMEOUT=10 "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -h "$SOCKET_DIR" -p "$PORT" -U "$SUPERUSER" -d "$db" "$@"
}
FIRST_DB=${DATABASES[0]}
# db_exists DB (psql interpolates :'db' only in what it reads, not in -c).
db_exists() {
    [ "$(sql "$FIRST_DB" -v db="$1" <<< "SELECT count(*) FROM pg_database WHERE datname = :'db'")" = 1 ]
}

# pinned_now: the server's pgmesh.pinned_settings, normalized like PINNED_LIST ("" when unset).
pinned_now() {
    sql "$FIRST_DB" -c "SELECT current_setting('pgmesh.pinned_settings', true)" |
        tr ',' '\n' | tr -d ' \t\r"' | tr '[:upper:]' '[:lower:]' | sed '/^$/d' | sort -u | paste -sd, -
}

connect_check() {
    local out
    out=$(sql "$FIRST_DB" -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user" 2>&1) ||
        die "cannot connect to database \"$FIRST_DB\" as $SUPERUSER over $SOCKET_DIR port $PORT:
$out
(the connection runs as the OS user $OWNER: pg_hba.conf needs local peer or trust for $SUPERUSER;
 --superuser names another superuser)"
    [ "$out" = t ] || die "$SUPERUSER is not a superuser on this cluster (--superuser names one)"
}

# --- list settings (shared_preload_libraries): PostgreSQL's syntax, elements may be "quoted" ---
# list_items VALUE: one element a line, unquoted, surrounding blanks trimmed.
list_items() {
    local s=$1 item='' quoted=0 c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        if [ "$quoted" = 1 ]; then
            if [ "$c" = '"' ]; then
                if [ "${s:i+1:1}" = '"' ]; then item+='"'; i=$((i + 1)); else quoted=0; fi
            else
                item+=$c
            fi
        elif [ "$c" = '"' ]; then
            quoted=1
        elif [ "$c" = , ]; then
            _list_emit "$item"
            item=
        else
            item+=$c
        fi
    done
    _list_emit "$item"
}
_list_emit() {
    local t=$1
    t=${t#"${t%%[![:space:]]*}"}
    t=${t%"${t##*[![:space:]]}"}
    [ -z "$t" ] || printf '%s\n' "$t"
}
# has_pgmesh VALUE: the list names the pgmesh library (pgmesh, $libdir/pgmesh, pgmesh.so, ...).
has_pgmesh() {
    local item
    while IFS= read -r item; do
        case ${item##*/} in pgmesh | pgmesh.so) return 0 ;; esac
    done < <(list_items "$1")
    return 1
}

# --- the key file: what the extension accepts (mac.c) ---
# key_owner_problem FILE: prints what is wrong with the file's type, owner or mode; nothing if fine.
# Like the extension: owned by the cluster's OS user without group or other access, or by root
# and at most group-readable.
key_owner_problem() {
    local f=$1 uid mode
    [ -e "$f" ] || { echo "does not exist"; return; }
    [ -f "$f" ] && [ ! -L "$f" ] || { echo "is not a regular file"; return; }
    uid=$(stat -c %u "$f")
    mode=$(stat -c %a "$f")
    if [ "$uid" = "$OWNER_UID" ]; then
        (( (8#$mode & 8#077) == 0 )) && return
    elif [ "$uid" = 0 ]; then
        (( (8#$mode & 8#037) == 0 )) && return
    fi
    echo "is owned by $(stat -c %U "$f") with mode $mode, not by $OWNER with mode 600"
}
# key_content_ok FILE: hex digits (32 to 512 bytes of key), then nothing but blanks and newlines:
# what both the extension and pgmesh read.
key_content_ok() {
    local f=$1 text rest ws=$' \t\r\n'
    [ "$(stat -c %s "$f")" -le 4096 ] || return 1
    text=$(cat "$f" && echo x)
    text=${text%x}
    rest=${text#"${text%%["$ws"]*}"}
    text=${text%"$rest"}
    [[ $rest =~ ^[$ws]*$ ]] && [[ $text =~ ^[0-9a-fA-F]+$ ]] &&
        (( ${#text} % 2 == 0 && ${#text} >= 64 && ${#text} <= 1024 ))
}

# --- extension files: built here, installed where the cluster's PostgreSQL looks ---
PKGLIBDIR=
SHAREDIR=
pg_dirs() {
    [ -x "$PG_CONFIG" ] || return 1
    PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
    SHAREDIR=$("$PG_CONFIG" --sharedir)/extension
}
# installed_as_built: every file make install would copy is there, byte for byte.
installed_as_built() {
    local f
    cmp -s "$ROOT/extension/pgmesh.so" "$PKGLIBDIR/pgmesh.so" || return 1
    for f in "$ROOT"/extension/pgmesh.control "$ROOT"/extension/pgmesh--*.sql; do
        cmp -s "$f" "$SHAREDIR/$(basename "$f")" || return 1
    done
}

# ======================================================================================= --check
if [ "$CHECK" = 1 ]; then
    missing=0
    ok() { say "  ok       $*"; }
    miss() { say "  MISSING  $*"; missing=$((missing + 1)); }
    say "pgmesh server-side enforcement on $PGDATA (PostgreSQL $PG_MAJOR, port $PORT):"
    if pg_dirs && [ -f "$PKGLIBDIR/pgmesh.so" ] && [ -f "$SHAREDIR/pgmesh.control" ]; then
        ok "extension installed ($PKGLIBDIR/pgmesh.so)"
    else
        miss "extension not installed: no pgmesh.so in ${PKGLIBDIR:-the lib dir of PostgreSQL} (make extension, as root)"
    fi
    if ! cluster_running; then
        miss "PostgreSQL is not running in $PGDATA: preload, key file and databases not checked"
    else
        connect_check
        preload=$(sql "$FIRST_DB" -c "SHOW shared_preload_libraries")
        session_preload=$(sql "$FIRST_DB" -c "SHOW session_preload_libraries")
        if has_pgmesh "$preload" || has_pgmesh "$session_preload"; then
            ok "pgmesh preloaded (shared_preload_libraries = '$preload')"
        else
            pending=$(sql "$FIRST_DB" -c "SELECT setting FROM pg_file_settings
                WHERE name = 'shared_preload_libraries' ORDER BY seqno DESC LIMIT 1")
            if has_pgmesh "$pending"; then
                miss "pgmesh not preloaded yet: shared_preload_libraries = '$pending' waits for a restart"
            else
                miss "pgmesh not preloaded: shared_preload_libraries = '$preload'"
            fi
        fi
        key=$(sql "$FIRST_DB" -c "SELECT current_setting('pgmesh.key_file', true)")
        if [ -z "$key" ]; then
            miss "no key file: pgmesh.key_file is not set"
        else
            case $key in /*) ;; *) key=$PGDATA/$key ;; esac
            problem=$(key_owner_problem "$key")
            if [ -n "$problem" ]; then
                miss "key file $key $problem"
            elif ! key_content_ok "$key"; then
                miss "key file $key holds no key (hex, at least 32 bytes)"
            else
                ok "key file $key (owner $(stat -c %U "$key"), mode $(stat -c %a "$key"))"
                if [ "$KEY_OUT_GIVEN" = 1 ]; then
                    if [ ! -f "$KEY_OUT" ]; then
                        miss "no copy of the key at $KEY_OUT"
                    elif cmp -s "$key" "$KEY_OUT"; then
                        ok "$KEY_OUT holds the same key"
                    else
                        miss "$KEY_OUT holds a different key from $key"
                    fi
                fi
            fi
        fi
        if [ -n "$PINNED_LIST" ]; then
            now=$(pinned_now)
            missing_names=$(comm -23 <(tr , '\n' <<< "$PINNED_LIST") <(tr , '\n' <<< "$now") | paste -sd, -)
            if [ -z "$missing_names" ]; then
                ok "pgmesh.pinned_settings = '$now' lists $PINNED_LIST"
            else
                miss "pgmesh.pinned_settings = '$now' does not list $missing_names"
            fi
        elif has_pgmesh "$preload" || has_pgmesh "$session_preload"; then
            ok "pgmesh.pinned_settings = '$(pinned_now)' (--pinned checks names)"
        fi
        for db in "${DATABASES[@]}"; do
            if ! db_exists "$db"; then
                miss "database \"$db\" does not exist"
            elif [ -n "$(sql "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'pgmesh'")" ]; then
                ok "database \"$db\" has the extension"
            else
                miss "database \"$db\" has no CREATE EXTENSION pgmesh"
            fi
        done
    fi
    if [ "$missing" -gt 0 ]; then
        say "$missing missing; scripts/server-setup.sh without --check (as root) sets them up"
        exit 1
    fi
    say "everything is in place"
    exit 0
fi

# ======================================================================================= set up
cluster_running || die "PostgreSQL is not running in $PGDATA (start it first: the setup talks to it)"
connect_check
for db in "${DATABASES[@]}"; do
    db_exists "$db" || die "database \"$db\" does not exist on this cluster"
done
say "pgmesh server-side enforcement on $PGDATA (PostgreSQL $PG_MAJOR, port $PORT, OS user $OWNER)"

# 1. Build and install. PGXS needs the server headers (postgresql-server-dev-15 on Debian).
say "== 1. the extension"
if [ ! -x "$PG_CONFIG" ] || [ ! -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ] ||
    [ ! -f "$("$PG_CONFIG" --pgxs)" ]; then
    need_root "installing postgresql-server-dev-$PG_MAJOR"
    say "installing postgresql-server-dev-$PG_MAJOR (PostgreSQL's server headers and PGXS)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "postgresql-server-dev-$PG_MAJOR" > /dev/null ||
        die "apt-get install postgresql-server-dev-$PG_MAJOR failed (apt-get update first?)"
fi
pg_dirs
MAKE_LOG=$(mktemp /tmp/pgmesh-server-setup.XXXXXX)
trap 'rm -f "$MAKE_LOG"' EXIT
MAKEFLAGS= make -C "$ROOT/extension" PG_CONFIG="$PG_CONFIG" > "$MAKE_LOG" 2>&1 ||
    { tail -n 30 "$MAKE_LOG" >&2; die "building extension/ failed"; }
if installed_as_built; then
    say "already installed in $PKGLIBDIR, as built"
else
    need_root "installing the extension into $PKGLIBDIR"
    MAKEFLAGS= make -C "$ROOT/extension" PG_CONFIG="$PG_CONFIG" install > "$MAKE_LOG" 2>&1 ||
        { tail -n 30 "$MAKE_LOG" >&2; die "make -C extension install failed"; }
    installed_as_built || die "make install left different files in $PKGLIBDIR or $SHAREDIR"
    say "installed pgmesh.so in $PKGLIBDIR and its SQL files in $SHAREDIR"
fi

# 2. The key file. A valid key already configured stays: pgmesh may hold a copy of it.
say "== 2. the shared key file"
KEY=$PGDATA/pgmesh.key
configured=$(sql "$FIRST_DB" -c "SELECT current_setting('pgmesh.key_file', true)")
case $configured in "" | /*) ;; *) configured=$PGDATA/$configured ;; esac
if [ -n "$configured" ] && [ "$configured" != "$KEY" ]; then
    if [ -z "$(key_owner_problem "$configured")" ] && key_content_ok "$configured"; then
        KEY=$configured
    else
        say "pgmesh.key_file names $configured, which $(key_owner_problem "$configured" |
            grep . || echo "holds no key"); using $KEY instead"
    fi
fi
if [ ! -e "$KEY" ]; then
    tmp=$(mktemp "$PGDATA/.pgmesh.key.XXXXXX")
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$tmp"
    echo >> "$tmp"
    [ "$IS_ROOT" = 1 ] && chown "$OWNER_UID:$OWNER_GID" "$tmp"
    chmod 600 "$tmp"
    mv "$tmp" "$KEY"
    say "made $KEY (32 random bytes, hex; owner $OWNER, mode 600)"
else
    key_content_ok "$KEY" ||
        die "$KEY exists but holds no key (hex, at least 32 bytes); remove it to have a new one made"
    problem=$(key_owner_problem "$KEY")
    if [ -n "$problem" ]; then
        [ "$(stat -c %u "$KEY")" = "$OWNER_UID" ] || need_root "giving $KEY to $OWNER"
        [ "$IS_ROOT" = 1 ] && chown "$OWNER_UID:$OWNER_GID" "$KEY"
        chmod 600 "$KEY"
        say "kept the key in $KEY, which $problem: fixed (owner $OWNER, mode 600)"
    else
        say "kept $KEY (a valid key, owner $(stat -c %U "$KEY"), mode $(stat -c %a "$KEY"))"
    fi
fi

# 3. Configuration, through ALTER SYSTEM (postgresql.auto.conf), only what differs.
# The preload line first: PostgreSQL 15's ALTER SYSTEM knows pgmesh.key_file only once the
# library is loaded.
say "== 3. configuration"
q="'"
running=$(sql "$FIRST_DB" -c "SHOW shared_preload_libraries")
session_running=$(sql "$FIRST_DB" -c "SHOW session_preload_libraries")
restart=0
if has_pgmesh "$running" || has_pgmesh "$session_running"; then
    say "pgmesh is already preloaded (shared_preload_libraries = '$running')"
else
    # The files' value, not the running one: a change waiting for a restart is kept too.
    in_file=$(sql "$FIRST_DB" -c "SELECT count(*) FROM pg_file_settings WHERE name = 'shared_preload_libraries'")
    if [ "$in_file" != 0 ]; then
        base=$(sql "$FIRST_DB" -c "SELECT setting FROM pg_file_settings
            WHERE name = 'shared_preload_libraries' ORDER BY seqno DESC LIMIT 1")
    else
        base=$running
    fi
    if has_pgmesh "$base"; then
        say "shared_preload_libraries already names pgmesh in the configuration ('$base'); not yet loaded"
    else
        # One literal per element: a single 'a,b' would be read as one library called "a,b".
        literals=
        while IFS= read -r item; do
            literals+="'${item//$q/$q$q}', "
        done < <(list_items "$base")
        literals+="'pgmesh'"
        sql "$FIRST_DB" -c "ALTER SYSTEM SET shared_preload_libraries = $literals" > /dev/null
        say "ALTER SYSTEM SET shared_preload_libraries = $literals (was '$base')"
    fi
    restart=1
fi

if [ "$restart" = 1 ]; then
    # A library that does not load would keep the cluster down after the restart: try it first.
    # Loaded by LOAD, pgmesh refuses to initialize (it wants preloading), which proves it loads.
    out=$(sql "$FIRST_DB" -c "LOAD 'pgmesh'" 2>&1) || true
    case $out in
        *"could not load library"* | *"could not access file"* | *"incompatible library"*)
            die "PostgreSQL cannot load pgmesh, so the cluster was not restarted:
$out
(ALTER SYSTEM RESET shared_preload_libraries undoes the preload line)" ;;
    esac
    say "restarting PostgreSQL to load pgmesh"
    pid=$(head -n 1 "$PIDFILE")
    cluster=
    if command -v pg_lsclusters > /dev/null; then
        cluster=$(pg_lsclusters -h 2>/dev/null | awk -v d="$PGDATA" '$6 == d || $6 == d "/" { print $1 " " $2; exit }')
    fi
    if [ -n "$cluster" ]; then
        # A Debian cluster: pg_ctlcluster keeps systemd's unit in step with the server.
        # shellcheck disable=SC2086
        pg_ctlcluster $cluster restart -m fast || die "pg_ctlcluster $cluster restart failed"
        say "restarted with pg_ctlcluster $cluster"
    else
        # The server keeps logging where it did (pg_ctl -l FILE): that file is its stderr.
        log=$(readlink "/proc/$pid/fd/2" 2>/dev/null || true)
        case $log in /*) [ -f "$log" ] || log= ;; *) log= ;; esac
        [ -n "$log" ] || log=$PGDATA/pgmesh-setup-restart.log
        as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 120 -l "$log" restart > "$MAKE_LOG" 2>&1 ||
            { cat "$MAKE_LOG" >&2; die "pg_ctl restart failed; the server log is $log"; }
        say "restarted with pg_ctl as $OWNER (server log: $log)"
    fi
    for _ in $(seq 1 60); do
        cluster_running && sql "$FIRST_DB" -c "SELECT 1" > /dev/null 2>&1 && break
        sleep 1
    done
    running=$(sql "$FIRST_DB" -c "SHOW shared_preload_libraries")
    has_pgmesh "$running" || die "after the restart shared_preload_libraries is '$running', without pgmesh
(is it set on the server's command line, or later in postgresql.conf than postgresql.auto.conf?)"
else
    say "no restart needed"
fi

key_setting() { sql "$FIRST_DB" -c "SELECT current_setting('pgmesh.key_file', true)"; }
if [ "$(key_setting)" = "$KEY" ]; then
    say "pgmesh.key_file is already $KEY"
else
    sql "$FIRST_DB" -c "ALTER SYSTEM SET pgmesh.key_file = '${KEY//$q/$q$q}'" -c "SELECT pg_reload_conf()" > /dev/null
    # The reload is asynchronous: wait until new sessions see the key file.
    for _ in $(seq 1 50); do
        [ "$(key_setting)" = "$KEY" ] && break
        sleep 0.2
    done
    [ "$(key_setting)" = "$KEY" ] || die "pgmesh.key_file is '$(key_setting)' after the reload, not $KEY
(set later in postgresql.conf than postgresql.auto.conf?)"
    say "ALTER SYSTEM SET pgmesh.key_file = '$KEY', and reloaded (no restart needed for it)"
fi

# The settings pgmesh may pin besides statement_timeout and work_mem (PGC_SIGHUP: a reload).
if [ -z "$PINNED_LIST" ]; then
    say "pgmesh.pinned_settings = '$(pinned_now)' (kept; --pinned sets it)"
elif [ "$(pinned_now)" = "$PINNED_LIST" ]; then
    say "pgmesh.pinned_settings is already '$PINNED_LIST'"
else
    was=$(pinned_now)
    sql "$FIRST_DB" -c "ALTER SYSTEM SET pgmesh.pinned_settings = '$PINNED_LIST'" -c "SELECT pg_reload_conf()" > /dev/null
    for _ in $(seq 1 50); do
        [ "$(pinned_now)" = "$PINNED_LIST" ] && break
        sleep 0.2
    done
    [ "$(pinned_now)" = "$PINNED_LIST" ] || die "pgmesh.pinned_settings is '$(pinned_now)' after the reload, not $PINNED_LIST
(set later in postgresql.conf than postgresql.auto.conf?)"
    say "ALTER SYSTEM SET pgmesh.pinned_settings = '$PINNED_LIST' (was '$was'), and reloaded"
fi

# 4. The extension's SQL objects in each database.
say "== 4. CREATE EXTENSION in each database"
for db in "${DATABASES[@]}"; do
    have=$(sql "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'pgmesh'")
    want=$(sql "$db" -c "SELECT default_version FROM pg_available_extensions WHERE name = 'pgmesh'")
    if [ -n "$have" ] && [ "$have" != "$want" ]; then
        # A library preloaded before the update keeps running until the cluster restarts: until
        # then pgmesh's probe sees the old pgmesh.version() and does without what is new.
        sql "$db" -c "ALTER EXTENSION pgmesh UPDATE" > /dev/null
        say "database \"$db\": ALTER EXTENSION pgmesh UPDATE ($have to $want; restart PostgreSQL if it still runs the old library)"
    elif [ -n "$have" ]; then
        say "database \"$db\": already there"
    else
        sql "$db" -c "CREATE EXTENSION IF NOT EXISTS pgmesh" > /dev/null
        say "database \"$db\": CREATE EXTENSION pgmesh"
    fi
done

# 5. pgmesh's copy of the key. Another key already there is not overwritten: it may be in use.
say "== 5. the key for pgmesh"
if [ -e "$KEY_OUT" ] && ! cmp -s "$KEY" "$KEY_OUT"; then
    die "$KEY_OUT holds a different key; remove it or choose another --key-out"
fi
if [ ! -e "$KEY_OUT" ]; then
    (umask 077 && cat "$KEY" > "$KEY_OUT") 2> /dev/null || die "cannot write $KEY_OUT (--key-out names another file)"
    say "copied the key to $KEY_OUT"
else
    say "$KEY_OUT already holds the key"
fi
[ "$(stat -c %a "$KEY_OUT")" = 600 ] || chmod 600 "$KEY_OUT"
KEY_OUT_ABS=$(cd "$(dirname "$KEY_OUT")" && pwd -P)/$(basename "$KEY_OUT")

cat <<EOF

Done. On pgmesh's host, put the key file (mode 600, readable by pgmesh's user only) and add to
the [pgmesh] section of pgmesh's config, then restart pgmesh:

    server_key_file = $KEY_OUT_ABS
    server_enforcement = require

The server lets pgmesh pin these settings in [roles] (pin.NAME=VALUE), besides statement_timeout
and work_mem: pgmesh.pinned_settings = '$(pinned_now)'
(scripts/server-setup.sh --check with the same options reports what is missing.)
EOF
