#!/usr/bin/env bash
# Structured logs: with log_format = json every line pgmesh writes is one JSON object (each line
# parsed by Python's json module) with time, level, event, the connection's ids and names and the
# event's fields. A login, a refused login (bad token, odd bytes in the startup user name), a
# refused SET of a claim and a transaction ended by idle_transaction_timeout give the events a
# user would look for; at log_level = error the audit lines (refusals, ended transactions,
# reloads) are still written and the login line is not. A reload back to log_format = text gives
# today's text lines. No token, signature or secret appears in the log in either format.
. "$(dirname "$0")/lib.sh"
once_without_extension "nothing it checks depends on it"

PYTHON=/usr/bin/python3
mesh_config
ini_set pgmesh log_format json
ini_set pgmesh idle_transaction_timeout 1s
mesh_start

openssl rand -hex 32 > "$TEST_DIR/other.secret"
bad=$("$PGMESH_TOKEN" --secret-file "$TEST_DIR/other.secret" --tenant DE --role regional_analyst)

# One refused login with a quote, a backslash, a control character and a byte that
# is not UTF-8 in the startup user name, which the login_refused line names.
odd_login() {
    local out
    out=$(mesh_psql "$bad" -U $'odd"\\\x01\xff' -c 'SELECT 1' 2>&1) && fail "a bad token logged in"
    assert_contains "$out" "token signature is invalid" "bad token"
}

# The actions each phase repeats. Each phase logs in as another sub: the text format's repeat
# limiter holds back a login line identical to one of the last 10 s.
actions() {
    tok=$(mint DE regional_analyst --sub "$1")
    assert_eq DE "$(mesh_psql "$tok" -c "SELECT current_setting('request.jwt.claim.tenant')")" "login"
    odd_login
    local out
    out=$(mesh_psql "$tok" -c "SET request.jwt.claim.tenant = 'x'" 2>&1) && fail "SET of a claim went through"
    assert_contains "$out" "request.jwt.claim.tenant is managed by pgmesh" "tampering"
}

echo "== json, log_level = info"
actions alice@example.com
out=$(printf 'BEGIN;\nSELECT 1;\n\\! sleep 2\nSELECT 2;\n' | mesh_psql "$tok" -v ON_ERROR_STOP=0 2>&1) || true
assert_contains "$out" "idle-in-transaction timeout" "idle transaction"
wait_log '"event":"transaction_ended"'

echo "== json, log_level = error"
ini_set pgmesh log_level error
mesh_reload 'config reload: .* applied'
start_error=$(wc -l < "$MESH_LOG")
actions bob@example.com
echo "== text, log_level = info"
ini_set pgmesh log_level info
ini_set pgmesh log_format text
mesh_reload 'config reload: .* applied'
start_text=$(wc -l < "$MESH_LOG")
actions carol@example.com
mesh_stop

# No token, nor its claims or signature part, nor a secret, in either format.
log=$(cat "$MESH_LOG")
for t in "$(mint DE regional_analyst --sub alice@example.com)" "$bad"; do
    payload=${t#*.}
    assert_not_contains "$log" "${payload%%.*}" "pgmesh log (token payload)"
    assert_not_contains "$log" "${t##*.}" "pgmesh log (token signature)"
done
assert_not_contains "$log" "$(cat "$MESH_SECRET")" "pgmesh log (secret)"
assert_not_contains "$log" "$(cat "$TEST_DIR/other.secret")" "pgmesh log (other secret)"

START_ERROR=$start_error START_TEXT=$start_text "$PYTHON" - "$MESH_LOG" <<'PY'
import json, os, re, sys

lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "the log ends with a newline"
lines = lines[:-1]
start_error, start_text = int(os.environ["START_ERROR"]), int(os.environ["START_TEXT"])
text_line = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] (ERROR|WARNING|INFO|DEBUG) ")
rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)

records = []  # (line number, object)
for n, raw in enumerate(lines, 1):
    if raw.startswith(b"--- mesh_start"):
        continue  # the harness's marker
    if n > start_text:
        # The reload to text was written as text already; the rest are text lines.
        continue
    if text_line.match(raw):
        if n < start_text - 2:
            fail(f"line {n} is text in the json phase: {raw!r}")
        continue
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        fail(f"line {n} is not JSON ({e}): {raw!r}")
    if not isinstance(obj, dict):
        fail(f"line {n} is not an object: {raw!r}")
    for key in ("time", "level", "event", "message", "pid"):
        if key not in obj:
            fail(f"line {n} has no {key}: {raw!r}")
    if not rfc3339.match(obj["time"]):
        fail(f"line {n}: time {obj['time']!r} is not RFC 3339 UTC with milliseconds")
    if obj["level"] not in ("error", "warning", "info", "debug"):
        fail(f"line {n}: level {obj['level']!r}")
    if not re.match(r"^[a-z][a-z0-9_]*$", obj["event"]):
        fail(f"line {n}: event {obj['event']!r} is not snake_case")
    records.append((n, obj))

def find(phase, event, **want):
    lo, hi = {"info": (0, start_error), "error": (start_error, start_text)}[phase]
    for n, o in records:
        if lo < n <= hi and o["event"] == event and all(o.get(k) == v for k, v in want.items()):
            return o
    return None

def need(phase, event, **want):
    o = find(phase, event, **want)
    if o is None:
        fail(f"{phase} phase: no {event} line with {want}")
    return o

who = dict(tenant="DE", role="regional_analyst", database="media_analytics")
o = need("info", "client_login", sub="alice@example.com", server_user="marketing_domain_role", **who)
if not (o.get("conn", "").startswith("C-") and o.get("client_id") == int(o["conn"][2:])):
    fail(f"client_login conn/client_id: {o}")
for phase in ("info", "error"):
    o = need(phase, "login_refused", audit=True, sqlstate="28P01", database="media_analytics")
    if o.get("user") != 'odd"\\\x01\ufffd':
        fail(f"login_refused user {o.get('user')!r}")
    if "tenant" in o or "role" in o:
        fail(f"a refused token's claims were logged as the client's: {o}")
    need(phase, "tampering_refused", audit=True, refusal="managed_setting", name="request.jwt.claim.tenant", **who)
o = need("info", "transaction_ended", audit=True, limit="idle_transaction_timeout", limit_ms=1000, sqlstate="25P03",
         **who)
# Written after the new log_level (error) took effect.
if not any(o["event"] == "config_reloaded" and o.get("audit") is True and "log_level error" in o["message"]
           for _, o in records):
    fail("no audited config_reloaded line for the reload to log_level = error")
if find("error", "client_login"):
    fail("client_login written at log_level = error")
if any(start_error < n <= start_text and not o.get("audit") and o["level"] != "error" for n, o in records):
    fail("a line below error that is not an audit line at log_level = error")
print(f"{len(records)} JSON lines parsed")
PY

# Text as it was: the same lines tests and users grep for.
text=$(tail -n +"$((start_text + 1))" "$MESH_LOG")
assert_contains "$text" "login: role=regional_analyst tenant=DE sub=carol@example.com" "text login line"
assert_contains "$text" "FATAL 28P01: " "text refused login line"
assert_contains "$text" "refused a change of request.jwt.claim.tenant (role regional_analyst, tenant DE)" "text refusal"
assert_not_contains "$text" '"event"' "text phase"
# The control character in the startup user name is shown as ?, never written raw.
assert_contains "$text" 'media_analytics/odd"\?' "text refused login prefix"
[ "$(grep -ac $'\x01' "$MESH_LOG" || true)" = 0 ] || fail "a raw control character in the log"
echo ok
