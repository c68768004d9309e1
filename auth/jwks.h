/* JSON Web Key Sets (RFC 7517) of RSA and EC public keys, turned into a struct jwt_keys whose keys
 * are PEM text for libjwt; and the reverse, one public JWK from an OpenSSL key, for
 * tools/pgmesh-token and the tests. No sockets, no logging. */
#ifndef PGMESH_AUTH_JWKS_H
#define PGMESH_AUTH_JWKS_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "auth/keys.h"

/* Parses {"keys":[...]} with 1..KEYS_JWKS_MAX keys. Each key: kty "RSA" (n, e; at least 2048
 * bits) or "EC" (crv P-256, P-384 or P-521 with full-length x, y on the curve); optional kid
 * (printable, 1..KEYS_KID_MAX bytes, unique), use, alg. Refused: private members (d, p, q, ...),
 * kty "oct" and any other kty, bad base64url, a set of several keys where one has no kid. On
 * failure returns NULL and writes err (naming the key by index and kid). Caller frees with
 * keys_free. */
struct jwt_keys *jwks_parse(const char *text, size_t len, char *err, size_t errlen);
/* jwks_parse on a file of at most 1 MiB. */
struct jwt_keys *jwks_load(const char *path, char *err, size_t errlen);

/* The public JWK of pkey (RSA, or EC on a supported curve; a private key is fine, only its public
 * half is written) with kid and alg when non-NULL, and "use":"sig". Returns a new reference or
 * NULL with err written. */
json_t *jwks_public_jwk(const EVP_PKEY *pkey, const char *kid, const char *alg, char *err, size_t errlen);

#endif
