#!/usr/bin/env bash
# Asymmetric tokens through pgmesh: a PEM public key (RS256, and the key-confusion attack on it),
# then a JWKS file with an RSA and an EC key chosen by kid, rotated with SIGHUP while a session
# stays open; plus claims_json and tenant_pattern.
. "$(dirname "$0")/lib.sh"

keys=$TEST_DIR/keys
mkdir -p "$keys"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rsa1.pem" 2>/dev/null
openssl pkey -in "$keys/rsa1.pem" -pubout -out "$keys/rsa1.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/ec1.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rsa2.pem" 2>/dev/null
tok() { "$PGMESH_TOKEN" --tenant DE --role regional_analyst "$@"; }
claims="SELECT current_setting('request.jwt.claim.tenant')"

# A PEM public key, RS256 only.
mesh_config
ini_del jwt secret_file
ini_set jwt public_key_file "$keys/rsa1.pub"
ini_set jwt algorithms "RS256"
mesh_start
assert_eq "DE" "$(mesh_psql "$(tok --private-key "$keys/rsa1.pem")" -c "$claims")" "RS256 with the PEM key"
out=$(mesh_psql "$(tok --secret-file "$keys/rsa1.pub" --alg HS256)" -c "$claims" 2>&1) || true
assert_contains "$out" "token algorithm not allowed" "HS256 signed with the RSA public key's text"
out=$(mesh_psql "$(tok --private-key "$keys/rsa2.pem")" -c "$claims" 2>&1) || true
assert_contains "$out" "token signature is invalid" "RS256 signed by another key"
mesh_stop

# A JWKS with two keys, chosen by kid.
"$PGMESH_TOKEN" --private-key "$keys/rsa1.pem" --kid r1 --jwks-out "$keys/jwks.json" --tenant x --role y > /dev/null
"$PGMESH_TOKEN" --private-key "$keys/ec1.pem" --kid e1 --jwks-out "$keys/jwks.json" --tenant x --role y > /dev/null
ini_del jwt public_key_file
ini_set jwt jwks_file "$keys/jwks.json"
ini_set jwt algorithms "RS256, ES256"
ini_set jwt claims_json on
mesh_start
assert_eq "DE" "$(mesh_psql "$(tok --private-key "$keys/rsa1.pem" --kid r1)" -c "$claims")" "JWKS RSA key r1"
assert_eq "DE|alice" "$(mesh_psql "$(tok --private-key "$keys/ec1.pem" --kid e1 --sub alice)" \
    -c "SELECT current_setting('request.jwt.claim.tenant'), current_setting('request.jwt.claims')::json->>'sub'")" \
    "JWKS EC key e1, claims_json"
out=$(mesh_psql "$(tok --private-key "$keys/rsa2.pem" --kid r2)" -c "$claims" 2>&1) || true
assert_contains "$out" "token key id not recognized" "unknown kid"
out=$(mesh_psql "$(tok --private-key "$keys/ec1.pem" --kid r1)" -c "$claims" 2>&1) || true
assert_contains "$out" "not allowed" "ES256 token naming the RSA key's kid"

# Rotation: r2 replaces r1 on SIGHUP; a session opened before keeps working.
coproc LONG { PGPASSWORD=$(tok --private-key "$keys/rsa1.pem" --kid r1) psql -X -A -t -q "$(mesh_dsn x | sed 's/ password=x//')" 2>&1; }
echo "SELECT 'before:' || current_setting('request.jwt.claim.tenant');" >&"${LONG[1]}"
read -r -t 10 line <&"${LONG[0]}" || fail "long session did not answer"
assert_eq "before:DE" "$line" "long session before the rotation"
"$PGMESH_TOKEN" --private-key "$keys/rsa2.pem" --kid r2 --jwks-out "$keys/jwks2.json" --tenant x --role y > /dev/null
mv "$keys/jwks2.json" "$keys/jwks.json"
kill -HUP "$MESH_PID"
wait_log "config reload: .* applied"
echo "SELECT 'after:' || current_setting('request.jwt.claim.tenant');" >&"${LONG[1]}"
read -r -t 10 line <&"${LONG[0]}" || fail "long session did not answer after SIGHUP"
assert_eq "after:DE" "$line" "long session survives the key rotation"
exec {LONG[1]}>&-
assert_eq "DE" "$(mesh_psql "$(tok --private-key "$keys/rsa2.pem" --kid r2)" -c "$claims")" "new key r2 after SIGHUP"
out=$(mesh_psql "$(tok --private-key "$keys/rsa1.pem" --kid r1)" -c "$claims" 2>&1) || true
assert_contains "$out" "token key id not recognized" "removed key r1 after SIGHUP"
mesh_stop

# tenant_pattern: two upper-case letters for tenants (roles must match too).
mesh_config
ini_set jwt tenant_pattern '^[A-Za-z_]{2,32}$'
mesh_start
assert_eq "DE" "$(mesh_psql "$(mint DE regional_analyst)" -c "$claims")" "tenant matching tenant_pattern"
out=$(mesh_psql "$(mint DE-1 regional_analyst)" -c "$claims" 2>&1) || true
assert_contains "$out" "token claim is invalid" "tenant not matching tenant_pattern"
mesh_stop
