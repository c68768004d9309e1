/* Verification keys: an HMAC secret file, or a PEM public key (RSA or EC). A key set is built
 * whole and immutable; a reload builds a new one and swaps it. Owner: whoever called keys_load
 * frees with keys_free. No sockets. */
#ifndef PGMESH_AUTH_KEYS_H
#define PGMESH_AUTH_KEYS_H

#include <stdbool.h>
#include <stddef.h>

enum key_type { KEY_HMAC, KEY_RSA, KEY_EC };

struct jwt_keys {
    enum key_type type;
    unsigned char *material; /* secret bytes (HMAC) or PEM text (RSA/EC), as libjwt takes them */
    size_t material_len;
};

/* Exactly one of secret_file / public_key_file is non-empty. The secret file's trailing newline
 * is stripped; a secret shorter than 32 bytes is refused. A PEM file must hold a public key
 * (a private key or certificate is refused). On failure returns NULL and writes err. */
struct jwt_keys *keys_load(const char *secret_file, const char *public_key_file, char *err,
                           size_t errlen);
void keys_free(struct jwt_keys *keys);

#endif
