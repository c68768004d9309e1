#!/usr/bin/env bash
# A client that does not wait for each answer at login: its StartupMessage and PasswordMessage
# (the token) in one segment get AuthenticationOk and ReadyForQuery at once, not the 60 s login
# timeout; with a Query behind them in the same segment, the Query's result follows
# (tests/integration/proto_wire.py speaks the protocol by hand, without TLS).
. "$(dirname "$0")/lib.sh"
once_without_extension "the login is the same with or without it"

PYTHON=${PYTHON:-/usr/bin/python3}
WIRE=$(dirname "$0")/proto_wire.py
mesh_config
mesh_start
audit=$(mint HQ global_corporate_audit)

# The deadline (5 s) is far below the login timeout a stalled login would wait for.
out=$(TOKEN=$audit DEADLINE_S=5 "$PYTHON" "$WIRE" login 2>&1) || { printf '%s\n' "$out"; fail "startup and password in one segment"; }
assert_contains "$out" "ok login" "startup and password in one segment"

out=$(TOKEN=$audit DEADLINE_S=5 "$PYTHON" "$WIRE" login-query \
      "SELECT current_setting('request.jwt.claim.tenant'), current_setting('statement_timeout')" 2>&1) \
    || { printf '%s\n' "$out"; fail "startup, password and a Query in one segment"; }
assert_contains "$out" "HQ|5min" "startup, password and a Query in one segment"

# pgmesh serves the next client as usual.
assert_eq "HQ" "$(mesh_psql "$audit" -c "SHOW request.jwt.claim.tenant")" "a client after the pipelined ones"
mesh_stop
