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

/* Reads a secret file the way keys_load does (size-limited, trailing CR/LF stripped) without the
 * length minimum or any PEM check; for tools/pgmesh-token. On success *out is malloc'd (caller
 * frees, and should wipe it with OPENSSL_cleanse first) and NUL-terminated past *out_len. */
bool keys_read_secret(const char *path, unsigned char **out, size_t *out_len, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

#endif
