/* JWT verification: split and decode, check the header's alg against the allow-list and the key's
 * type before any key is used, verify the signature with libjwt, then check the claims libjwt
 * does not (claims.c). Token in, verdict out; the clock is an argument. No sockets, no globals. */
#ifndef PGMESH_AUTH_JWT_H
#define PGMESH_AUTH_JWT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/keys.h"

#define JWT_MAX_TOKEN_LEN 16384
#define JWT_CLAIM_MAX 64
#define JWT_CLAIMS_JSON_MAX 8192 /* bytes of compact JSON, without the NUL */

/* Algorithm bits for the allow-list. "none" has no bit: it can never be allowed. Named JWT_ALLOW_*
 * because libjwt's <jwt.h> already owns the JWT_ALG_* names (jwt_alg_t); both headers meet in
 * jwt.c, the tests and tools. */
enum {
    JWT_ALLOW_HS256 = 1u << 0,
    JWT_ALLOW_HS384 = 1u << 1,
    JWT_ALLOW_HS512 = 1u << 2,
    JWT_ALLOW_RS256 = 1u << 3,
    JWT_ALLOW_RS384 = 1u << 4,
    JWT_ALLOW_RS512 = 1u << 5,
    JWT_ALLOW_ES256 = 1u << 6,
    JWT_ALLOW_ES384 = 1u << 7,
    JWT_ALLOW_ES512 = 1u << 8,
};

/* Parses "HS256, RS256" into a mask. False (mask untouched) on an empty list, "none", or an
 * unknown name; err says which. */
bool jwt_parse_algorithms(const char *list, unsigned *mask, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The allow-list bits usable with a key of this type (HS* for HMAC, RS* for RSA, ES* for EC).
 * Config validation should refuse an alg_mask with no bit in common with it. */
unsigned jwt_algs_for_key(enum key_type type);
/* The same for a loaded key set: for a JWKS, the union over its keys' types. */
unsigned jwt_algs_for_keys(const struct jwt_keys *keys);

struct jwt_policy {
    unsigned alg_mask;
    const char *issuer;   /* NULL or "": not checked */
    const char *audience; /* NULL or "": not checked; token aud may be a string or an array */
    int64_t leeway_s;
    const char *tenant_claim; /* claim names, e.g. "tenant", "role"; NULL or "": those two */
    const char *role_claim;
    /* Both the tenant and the role claim must match this whole (REG_EXTENDED, compiled once by
     * the caller, e.g. at config load; the 64-byte bound applies regardless). NULL: the built-in
     * check, equivalent to ^[A-Za-z0-9_.-]{1,64}$. tenant_pattern_src is its text for details. */
    const regex_t *tenant_pattern;
    const char *tenant_pattern_src;
    bool claims_json; /* hand back the payload as JSON in jwt_identity.claims_json */
};

enum jwt_status {
    JWT_OK,
    JWT_MALFORMED, /* not three base64url parts, bad JSON, ... */
    JWT_TOO_LARGE,
    JWT_ALG_NOT_ALLOWED, /* none, outside the allow-list, or not matching the key's type */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
    JWT_WRONG_ISSUER,
    JWT_WRONG_AUDIENCE,
    JWT_MISSING_CLAIM, /* exp, tenant or role absent */
    JWT_BAD_CLAIM,     /* tenant or role not a string of 1..64 bytes matching the pattern */
    JWT_UNKNOWN_KEY,   /* JWKS: kid unknown, missing with several keys, or key not for "sig" */
};

struct jwt_identity {
    char tenant[JWT_CLAIM_MAX + 1];
    char role[JWT_CLAIM_MAX + 1];
    char sub[JWT_CLAIM_MAX + 1]; /* "" when absent or too long; for logs only */
    int64_t exp;
    /* The payload as compact JSON (at most JWT_CLAIMS_JSON_MAX bytes), malloc'd, when the policy
     * asked for it; else NULL. The holder frees it with jwt_identity_clear: a struct holding one
     * must not be copied with '=' (use jwt_identity_copy). */
    char *claims_json;
};

/* Frees claims_json and zeroes *id; accepts NULL. */
void jwt_identity_clear(struct jwt_identity *id);
/* *dst = *src with its own claims_json copy; false (dst untouched) when out of memory. */
bool jwt_identity_copy(struct jwt_identity *dst, const struct jwt_identity *src)
    __attribute__((warn_unused_result));

/* Verifies token[0..len) at time now (Unix seconds). On JWT_OK fills *out, overwriting it without
 * freeing (clear a used one first). With a JWKS the header's kid picks the key (required when the
 * set has several) and the key's kty, curve, use and alg must fit the token. On any other status,
 * writes a one-sentence detail for the client (e.g. "The token expired at 2026-11-27 10:00:00 UTC
 * (leeway 30 s).") into detail; never the token itself. */
enum jwt_status jwt_verify(const struct jwt_keys *keys, const struct jwt_policy *policy, const char *token,
                           size_t len, int64_t now, struct jwt_identity *out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

/* Short primary message for a status, PostgreSQL style: "token expired", "token signature is
 * invalid", "token algorithm not allowed", ... */
const char *jwt_status_message(enum jwt_status status);

#endif
