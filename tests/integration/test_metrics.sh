#!/usr/bin/env bash
# /metrics, /healthz and /readyz on metrics_listen: the exposition passes Debian's promtool, its
# figures match what clients did (a refused login, a refused claim change, transactions of a
# role), a real Prometheus scrapes it and answers queries for those series through its HTTP API,
# bad requests get 4xx without disturbing the pooler, and /readyz turns 503 while pgmesh drains on
# SIGTERM.
. "$(dirname "$0")/lib.sh"
once_without_extension "nothing it checks depends on it"
PYTHON=${PYTHON:-/usr/bin/python3}
command -v promtool > /dev/null || fail "promtool not found (make deps installs prometheus)"
command -v prometheus > /dev/null || fail "prometheus not found (make deps installs it)"

mesh_config
ini_set pgmesh default_pool_size 1
METRICS_PORT=$(_lib_free_port)
ini_set pgmesh metrics_listen "127.0.0.1:$METRICS_PORT"
mesh_start
base=http://127.0.0.1:$METRICS_PORT

get() { http_get "$1"; }
value() { metric_value "$TEST_DIR/metrics.txt" "$1"; }

de=$(mint DE regional_analyst)
fr=$(mint FR regional_analyst)
for i in 1 2 3 4 5; do mesh_psql "$de" -c "SELECT 1" > /dev/null || fail "DE transaction $i failed"; done
out=$(mesh_psql "$fr" -c "SET request.jwt.claim.tenant = 'DE'" 2>&1) && fail "the claim change passed: $out"
out=$(mesh_psql "not-a-token" -c "SELECT 1" 2>&1) && fail "a malformed token logged in: $out"
assert_contains "$out" "token is malformed"

get "$base/metrics" > "$TEST_DIR/scrape.txt"
assert_eq 200 "$(head -n 1 "$TEST_DIR/scrape.txt")" "GET /metrics status"
tail -n +2 "$TEST_DIR/scrape.txt" > "$TEST_DIR/metrics.txt"
promtool check metrics < "$TEST_DIR/metrics.txt" || fail "promtool check metrics rejected the exposition"
assert_eq 1 "$(value 'pgmesh_login_refusals_total{reason="malformed_token"}')" "malformed-token refusals"
assert_eq 1 "$(value 'pgmesh_refusals_total{kind="managed_setting"}')" "managed-setting refusals"
assert_eq 1 "$(value 'pgmesh_pool_size{database="media_analytics",user="marketing_domain_role"}')" "pool size"
# Six logins with two distinct good tokens: two signature checks, four cache hits.
assert_eq 4 "$(value 'pgmesh_token_cache_lookups_total{result="hit"}')" "token cache hits"
assert_eq 2 "$(value 'pgmesh_token_cache_entries')" "tokens cached"
tx=$(value 'pgmesh_transaction_seconds_count{role="regional_analyst"}')
[ "${tx:-0}" -ge 5 ] || fail "pgmesh_transaction_seconds_count for regional_analyst is '$tx', want at least 5"
assert_eq "$tx" "$(value 'pgmesh_transaction_seconds_bucket{role="regional_analyst",le="+Inf"}')" \
    "the +Inf bucket against the count"
# Per tenant: DE's five transactions, FR's refused claim change (a failed transaction of its own),
# nobody left logged in.
assert_eq 5 "$(value 'pgmesh_tenant_transactions_total{tenant="DE"}')" "DE's transactions"
assert_eq 1 "$(value 'pgmesh_tenant_transactions_total{tenant="FR"}')" "FR's transactions"
assert_eq 0 "$(value 'pgmesh_tenant_guard_refusals_total{tenant="DE"}')" "DE's refusals"
assert_eq 1 "$(value 'pgmesh_tenant_guard_refusals_total{tenant="FR"}')" "FR's refusals"
assert_eq 0 "$(value 'pgmesh_tenant_clients{tenant="DE"}')" "DE's clients after they left"
# One server connection: DE's transactions began on the connection DE used last (a fresh one
# first), FR's on one DE used last; without the extension every start sends the claims.
assert_eq 0 "$(value 'pgmesh_tenant_claim_switches_total{tenant="DE"}')" "DE's claim switches"
assert_eq 1 "$(value 'pgmesh_tenant_claim_switches_total{tenant="FR"}')" "FR's claim switches"
assert_eq 0 "$(value 'pgmesh_tenant_claims_held_transactions_total{tenant="DE"}')" "DE's transactions with nothing sent first"

assert_eq 200 "$(get "$base/healthz" | head -n 1)" "/healthz"
assert_eq 200 "$(get "$base/readyz" | head -n 1)" "/readyz"
assert_eq 404 "$(get "$base/nothing-here" | head -n 1)" "an unknown path"
# Not HTTP at all, and a request line that never ends: answered or dropped, the pooler unaffected.
printf 'GARBAGE\r\n\r\n' | timeout 5 nc -q 2 127.0.0.1 "$METRICS_PORT" > "$TEST_DIR/garbage.txt" || true
assert_contains "$(head -n 1 "$TEST_DIR/garbage.txt")" "400" "a request that is not HTTP"
(printf 'GET /metrics'; sleep 2) | timeout 5 nc 127.0.0.1 "$METRICS_PORT" > /dev/null 2>&1 &
mesh_psql "$de" -c "SELECT 1" > /dev/null || fail "a client failed while a metrics request hung"

# A real Prometheus scrapes pgmesh every second; its HTTP API must return the series.
PROM_PORT=$(_lib_free_port)
mkdir -p "$TEST_DIR/prom"
cat > "$TEST_DIR/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: pgmesh
    static_configs:
      - targets: ['127.0.0.1:$METRICS_PORT']
YML
prometheus --config.file="$TEST_DIR/prometheus.yml" --storage.tsdb.path="$TEST_DIR/prom" \
    --web.listen-address="127.0.0.1:$PROM_PORT" > "$TEST_DIR/prometheus.log" 2>&1 &
prom_pid=$!
_lib_pids+=("$prom_pid")
lib_at_exit "kill $prom_pid 2>/dev/null"
query() {
    "$PYTHON" - "http://127.0.0.1:$PROM_PORT/api/v1/query" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1] + "?" + urllib.parse.urlencode({"query": sys.argv[2]}), timeout=5)
    res = json.load(r)["data"]["result"]
    print(" ".join(sorted("%s=%s" % (m["metric"].get("reason", m["metric"].get("role", m["metric"].get("tenant", ""))), m["value"][1]) for m in res)))
except Exception:
    pass
PY
}
got=
for i in $(seq 1 300); do
    got=$(query 'pgmesh_login_refusals_total{job="pgmesh"}')
    [ -n "$got" ] && break
    kill -0 "$prom_pid" 2> /dev/null || { tail -n 20 "$TEST_DIR/prometheus.log" >&2; fail "prometheus exited"; }
    sleep 0.1
done
assert_eq "malformed_token=1" "$got" "pgmesh_login_refusals_total through Prometheus"
got=$(query 'pgmesh_transaction_seconds_count{job="pgmesh"} >= 5')
assert_contains "$got" "regional_analyst=" "transactions by role through Prometheus"
assert_eq "=1" "$(query 'up{job="pgmesh"}')" "Prometheus's up for the pgmesh target"
# DE ran one more while a metrics request hung.
assert_eq "DE=6 FR=1" "$(query 'pgmesh_tenant_transactions_total{job="pgmesh"}')" "per-tenant transactions through Prometheus"
assert_eq "DE=0 FR=1" "$(query 'pgmesh_tenant_guard_refusals_total{job="pgmesh"}')" "per-tenant refusals through Prometheus"

# Draining after SIGTERM: not ready, while the open transaction finishes.
mesh_psql "$de" -c "BEGIN" -c "SELECT pg_sleep(2)" -c "COMMIT" > /dev/null &
tx_pid=$!
sleep 0.5
kill -TERM "$MESH_PID"
sleep 0.3
assert_eq 503 "$(get "$base/readyz" | head -n 1)" "/readyz while draining"
wait "$tx_pid" || fail "the open transaction did not commit during the drain"
