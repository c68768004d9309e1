/* Claim checks libjwt does not do: exp (required) and nbf with leeway, iss, aud, and the shape of
 * the tenant and role claims. Runs only on a payload whose signature has been verified. Clock is
 * an argument; no sockets, no globals. */
#ifndef PGMESH_AUTH_CLAIMS_H
#define PGMESH_AUTH_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/jwt.h"

/* Checks the decoded payload object against policy at time now. On JWT_OK fills *out (and only
 * then); otherwise writes a one-sentence client detail (never a secret; token-supplied strings
 * only when short and printable). A NULL or empty tenant_claim/role_claim means "tenant"/"role". */
enum jwt_status claims_check(const json_t *payload, const struct jwt_policy *policy, int64_t now,
                             struct jwt_identity *out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

/* True when s is 1..JWT_CLAIM_MAX characters of [A-Za-z0-9_.-]. */
bool claims_name_ok(const char *s);

#endif
