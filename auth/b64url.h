/* base64url without padding (RFC 7515 section 2, RFC 4648 section 5), strict on input: one accepted
 * encoding per byte string. Shared by jwt.c (token parts) and jwks.c (JWK members). No I/O. */
#ifndef PGMESH_AUTH_B64URL_H
#define PGMESH_AUTH_B64URL_H

#include <stdbool.h>
#include <stddef.h>

/* Alphabet only, no '=', no length of 1 mod 4, unused trailing bits zero. out needs
 * len / 4 * 3 + 3 bytes. False (out_len untouched) on any violation. */
bool b64url_decode(const char *in, size_t len, unsigned char *out, size_t *out_len)
    __attribute__((warn_unused_result));

/* Encodes len bytes into out, which needs (len + 2) / 3 * 4 + 1 bytes; NUL-terminates. Returns
 * the encoded length. */
size_t b64url_encode(const unsigned char *in, size_t len, char *out);

#endif
