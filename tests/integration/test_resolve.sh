#!/usr/bin/env bash
# Host names in [databases] conninfos are resolved off the loop (proxy/resolve.c): host=localhost
# works, its lookup is logged as done off the loop and made once for several server connections
# (cached); a name that does not resolve fails its clients with FATAL 08006 naming it, and a list
# that has it first goes on with the next host. A name whose lookup takes 3 s (a getaddrinfo shim
# preloaded into pgmesh: no DNS server is at hand) does not hold up other databases' clients: they
# run queries at their usual pace meanwhile, and its own client is served once the answer came
# (and the watcher reads its cluster then too).
. "$(dirname "$0")/lib.sh"
once_without_extension "nothing it checks depends on it"
now_ms() { date +%s%3N; }
mkdir -p "$TEST_DIR"

# The shim: slow.pgmesh.test answers 127.0.0.1 after 3 s; every other name goes to the real one.
cat > "$TEST_DIR/slowdns.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
    if (node && strcmp(node, "slow.pgmesh.test") == 0) {
        sleep(3);
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}
EOF
gcc -shared -fPIC -o "$TEST_DIR/slowdns.so" "$TEST_DIR/slowdns.c" -ldl

# The passfile's entries for any host name.
pf=$TEST_DIR/pgpass
(umask 077 && sed -n 's/^127\.0\.0\.1:/*:/p' "$PG_PASSFILE" > "$pf")
db() { echo "host=$1 port=$PG_PORT dbname=media_analytics passfile=$pf"; }
mesh_config
ini_set pgmesh log_level debug
ini_set pgmesh default_pool_size 4
ini_set pgmesh server_connect_timeout 10s
ini_set pgmesh admin_roles global_corporate_audit
ini_set databases media_analytics "$(db localhost)"
ini_set databases nowhere_db "$(db no-such-host.invalid)"
ini_set databases fallback_db "host=no-such-host.invalid,localhost port=$PG_PORT dbname=media_analytics passfile=$pf"
ini_set databases slow_db "$(db slow.pgmesh.test)"
ini_set databases direct_db "$(db 127.0.0.1)"
# An ASan build's runtime must come first; the shim only wraps one libc function.
LD_PRELOAD=$TEST_DIR/slowdns.so ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 mesh_start
tok=$(mint acme regional_analyst)

echo "== host=localhost, four server connections, one lookup"
pids=()
for i in 1 2 3 4; do
    mesh_psql "$tok" -c "SELECT pg_sleep(0.3), $i" > "$TEST_DIR/c$i.out" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in 1 2 3 4; do assert_eq "|$i" "$(cat "$TEST_DIR/c$i.out")" "client $i through host=localhost"; done
wait_log "resolved localhost off the loop in [0-9]+ ms: " 5
assert_eq 1 "$(grep -c 'resolved localhost off the loop' "$MESH_LOG")" "lookups of localhost"
opened=$(grep -c 'media_analytics/marketing_domain_role: connecting$' "$MESH_LOG" || true)
echo "$opened server connections to localhost, one lookup"
[ "$opened" -ge 3 ] || fail "only $opened server connections opened for four concurrent clients"

echo "== a name that does not resolve"
st=0
out=$(mesh_psql "$tok" -d nowhere_db -c 'SELECT 1' 2>&1) || st=$?
[ "$st" != 0 ] || fail "a query through a name that does not resolve succeeded"
assert_contains "$out" "could not connect to the database server" "nowhere_db"
assert_contains "$out" 'could not translate host name "no-such-host.invalid" to address' "nowhere_db"
assert_eq 1 "$(mesh_psql "$tok" -d fallback_db -c 'SELECT 1')" "the next host of the list after a name that does not resolve"

echo "== a lookup that takes 3 s holds up nobody else"
t0=$(now_ms)
mesh_psql "$tok" -d slow_db -c 'SELECT 42' > "$TEST_DIR/slow.out" 2>&1 &
slow=$!
wait_log "slow_db/marketing_domain_role: waiting for the host name lookup" 5
worst=0 n=0
while kill -0 "$slow" 2>/dev/null && [ $(($(now_ms) - t0)) -lt 2500 ]; do
    t1=$(now_ms)
    assert_eq 1 "$(mesh_psql "$tok" -d direct_db -c 'SELECT 1')" "direct_db while slow_db's lookup runs"
    d=$(($(now_ms) - t1))
    [ "$d" -gt "$worst" ] && worst=$d
    n=$((n + 1))
done
echo "$n queries on direct_db while the lookup ran, the slowest took ${worst} ms (psql start-up included)"
[ "$n" -ge 3 ] || fail "only $n queries on direct_db while slow_db's lookup ran"
# A blocked loop would hold each of them for the rest of the 3 s.
[ "$worst" -lt 1500 ] || fail "a query on direct_db took ${worst} ms while slow_db's lookup ran"
wait "$slow" || fail "slow_db's client failed: $(cat "$TEST_DIR/slow.out")"
assert_eq 42 "$(cat "$TEST_DIR/slow.out")" "slow_db's client once the lookup answered"
# The lookup began when pgmesh started (it opens one server connection per pool at once).
took=$(sed -n 's/.*resolved slow\.pgmesh\.test off the loop in \([0-9]*\) ms: 127\.0\.0\.1$/\1/p' "$MESH_LOG")
echo "slow_db's client served after $(($(now_ms) - t0)) ms; the lookup took ${took:-?} ms"
[ -n "$took" ] && [ "$took" -ge 2900 ] || fail "the shim did not delay the lookup (${took:-no log line})"
echo "== the watcher reads slow_db's collation once the lookup answered"
admin=$(mint acme global_corporate_audit)
coll() { mesh_psql "$admin" -d pgmesh -F '|' -c 'SHOW COLLATIONS' | awk -F'|' -v db="$1" '$1 == db { print $4 }'; }
for _ in $(seq 1 50); do [ -n "$(coll slow_db)" ] && break; sleep 0.1; done
[ -n "$(coll slow_db)" ] || fail "the watcher has not read slow_db's collation"
assert_eq "$(coll direct_db)" "$(coll slow_db)" "slow_db's datcollate as the watcher read it"
mesh_stop
echo ok
