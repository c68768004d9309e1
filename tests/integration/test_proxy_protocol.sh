#!/usr/bin/env bash
# PROXY protocol (proxy_protocol = on) behind a real HAProxy 2.6 in TCP mode: one frontend sends v2
# (send-proxy-v2), one v1 (send-proxy), both from 127.0.0.2, the one address proxy_protocol_trusted
# lists. A client bound to 127.0.0.7 is then 127.0.0.7 and its own port in pgmesh's log and in SHOW
# CLIENTS, and gets its tenant's rows; psql works through HAProxy. A PROXY header from anyone else
# is refused and logged while others go on; a trusted peer's malformed header is too; a header split
# over several sends works; a reload changes who is trusted for the next connections.
. "$(dirname "$0")/lib.sh"
once_without_extension "nothing it checks depends on it"
. "$(dirname "$0")/haproxy_lib.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
HELPER=$(dirname "$0")/proxy_client.py

mesh_config
ini_set pgmesh proxy_protocol on
ini_set pgmesh proxy_protocol_trusted "127.0.0.2/32, ::1/128"
ini_set pgmesh admin_roles mesh_admin
mesh_start
de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
admin=$(mint ops mesh_admin)

{ read -r HA_V2; read -r HA_V1; } < <(free_ports 2)
{
    haproxy_defaults
    cat <<CFG
frontend fe_v2
    bind 127.0.0.1:$HA_V2
    default_backend be_v2
backend be_v2
    server mesh 127.0.0.1:$MESH_PORT send-proxy-v2 source 127.0.0.2
frontend fe_v1
    bind 127.0.0.1:$HA_V1
    default_backend be_v1
backend be_v1
    server mesh 127.0.0.1:$MESH_PORT send-proxy source 127.0.0.2
CFG
} > "$TEST_DIR/haproxy.cfg"
haproxy_start "$TEST_DIR/haproxy.cfg" "$HA_V2" "$HA_V1"

q_tenant="SELECT DISTINCT country_code FROM core.fct_playback_sessions ORDER BY 1"
# client PORT SQL [ADMIN_TOKEN]: proxy_client.py with TOKEN, SRC, HEADER, SPLIT from the caller.
client() {
    timeout -k 5 30 "$PYTHON" "$HELPER" "$@"
}

# through_haproxy PORT VERSION: a client from 127.0.0.7 is 127.0.0.7 and its port in the log and
# in SHOW CLIENTS, not HAProxy's 127.0.0.2.
# Each with its own sub: the log writes a repeated identical login line once per 10 s.
through_haproxy() {
    local port=$1 version=$2 out cport row addr cport_seen token
    token=$(mint DE regional_analyst --sub "haproxy-$version")
    out=$(TOKEN=$token SRC=127.0.0.7 ADMIN_PORT=$MESH_PORT client "$port" "$q_tenant" "$admin") ||
        fail "$version: the client through HAProxy failed: $out"
    echo "$out"
    cport=$(sed -n 's/^local_port=//p' <<< "$out")
    assert_eq "row=DE" "$(grep '^row=' <<< "$out")" "$version: DE's rows through HAProxy"
    row=$(grep '^client=' <<< "$out" | grep '|proxy_client|' || true)
    [ -n "$row" ] || fail "$version: the client is not in SHOW CLIENTS: $out"
    IFS='|' read -r _ _ _ _ addr cport_seen _ <<< "${row#client=}"
    assert_eq "127.0.0.7|$cport" "$addr|$cport_seen" "$version: SHOW CLIENTS addr|port"
    wait_log "C-[0-9]+ media_analytics/DE@127\\.0\\.0\\.7:$cport: login: role=regional_analyst tenant=DE sub=haproxy-$version " 5 ||
        fail "$version: no login line naming 127.0.0.7:$cport"
}

echo "== HAProxy send-proxy-v2 and send-proxy: the client's own address"
through_haproxy "$HA_V2" v2
through_haproxy "$HA_V1" v1
assert_not_contains "$(grep 'login:' "$MESH_LOG")" "@127.0.0.2:" "login lines naming HAProxy's address"

echo "== psql through HAProxy: each tenant its own rows"
assert_eq "DE" "$(mesh_psql "$de" -p "$HA_V2" -c "$q_tenant")" "DE through HAProxy v2"
assert_eq "FR" "$(mesh_psql "$fr" -p "$HA_V2" -c "$q_tenant")" "FR through HAProxy v2"
assert_eq "FR" "$(mesh_psql "$(mint FR regional_analyst --sub psql-v1)" -p "$HA_V1" -c "$q_tenant")" \
    "FR through HAProxy v1"
# psql connects from 127.0.0.1, and that is the address pgmesh logs for it, with psql's port.
wait_log "media_analytics/FR@127\\.0\\.0\\.1:[0-9]+: login: .* sub=psql-v1 " 5 || fail "no login line naming psql's address"

echo "== a PROXY header from an untrusted peer is refused"
for h in v2 v1; do
    out=$(TOKEN=$de HEADER=$h client "$MESH_PORT" "$q_tenant") && fail "untrusted $h header: served: $out"
    assert_contains "$out" "closed" "untrusted $h header"
done
wait_log "PROXY protocol header from 127\\.0\\.0\\.1 refused: the address is not in proxy_protocol_trusted" 5 ||
    fail "no warning about the untrusted header"
assert_not_contains "$(cat "$MESH_LOG")" "@203.0.113.9" "the log"
assert_eq "DE" "$(mesh_psql "$de" -c "$q_tenant")" "a direct psql without a header"
assert_eq "FR" "$(mesh_psql "$fr" -p "$HA_V2" -c "$q_tenant")" "HAProxy's clients meanwhile"

echo "== a trusted peer: malformed, split, LOCAL, none"
out=$(TOKEN=$de SRC=127.0.0.2 HEADER=garbage client "$MESH_PORT" "$q_tenant") && fail "garbage header: served: $out"
assert_contains "$out" "closed" "garbage after PROXY from a trusted peer"
wait_log "PROXY protocol header from 127\\.0\\.0\\.2 refused: v1 header: unexpected byte" 5 ||
    fail "no warning about the malformed header"
for h in v1 v2; do
    out=$(TOKEN=$de SRC=127.0.0.2 HEADER=$h HDR_PORT=4242 SPLIT=1 client "$MESH_PORT" "$q_tenant" "$admin") ||
        fail "$h header split over several sends: $out"
    assert_eq "row=DE" "$(grep '^row=' <<< "$out")" "$h header split over several sends"
    assert_contains "$out" "|media_analytics|idle|203.0.113.9|4242|" "SHOW CLIENTS after a split $h header"
done
# Header and startup packet in one send; LOCAL (a health check) and no header keep the socket's peer.
out=$(TOKEN=$de SRC=127.0.0.2 HEADER=v2 HDR_SRC=198.51.100.3 client "$MESH_PORT" "$q_tenant" "$admin")
assert_contains "$out" "|media_analytics|idle|198.51.100.3|4242|" "a v2 header in the startup packet's send"
for h in v2-local v1-unknown none; do
    out=$(TOKEN=$de SRC=127.0.0.2 HEADER=$h client "$MESH_PORT" "$q_tenant" "$admin") || fail "$h: $out"
    assert_contains "$out" "|media_analytics|idle|127.0.0.2|$(sed -n 's/^local_port=//p' <<< "$out")|" \
        "SHOW CLIENTS after $h from a trusted peer"
done

# reload: SIGHUP, the reload's outcome, which must not be a refusal.
reload() {
    mesh_reload
    assert_not_contains "$(cat "$MESH_LOG")" "configuration not reloaded" "the log after SIGHUP"
}

echo "== JSON logs: the client's address"
ini_set pgmesh log_format json
reload
out=$(TOKEN=$(mint DE regional_analyst --sub json-v2) SRC=127.0.0.7 client "$HA_V2" "$q_tenant") || fail "json: $out"
cport=$(sed -n 's/^local_port=//p' <<< "$out")
line=$(grep '"event":"client_login"' "$MESH_LOG" | grep '"sub":"json-v2"' || true)
assert_contains "$line" "\"addr\":\"127.0.0.7:$cport\"" "the JSON login line"

echo "== reload: 127.0.0.2 no longer trusted, for new connections"
ini_set pgmesh log_format text
ini_set pgmesh proxy_protocol_trusted "127.0.0.3/32"
reload
out=$(mesh_psql "$de" -p "$HA_V2" -c "$q_tenant" 2>&1) && fail "HAProxy's header after the reload: served: $out"
wait_log "PROXY protocol header from 127\\.0\\.0\\.2 refused: the address is not in proxy_protocol_trusted" 5 ||
    fail "no warning about HAProxy's header after the reload"
assert_eq "DE" "$(mesh_psql "$de" -c "$q_tenant")" "a direct psql after the reload"
kill -0 "$MESH_PID" || fail "pgmesh is gone"
mesh_stop
