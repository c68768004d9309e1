/* Verification keys: an HMAC secret file, a PEM public key (RSA or EC), or a JWKS file of RSA and
 * EC public keys chosen by kid (auth/jwks.c). A key set is built whole and immutable; a reload
 * builds a new one and swaps it. Owner: whoever called keys_load* frees with keys_free. No
 * sockets. */
#ifndef PGMESH_AUTH_KEYS_H
#define PGMESH_AUTH_KEYS_H

#include <stdbool.h>
#include <stddef.h>

enum key_type { KEY_HMAC, KEY_RSA, KEY_EC };

/* EC curves by the JWS algorithm that uses them (RFC 7518 section 3.4). */
enum key_curve { KEY_CURVE_NONE, KEY_CURVE_P256, KEY_CURVE_P384, KEY_CURVE_P521 };

#define KEYS_KID_MAX 128
#define KEYS_JWKS_MAX 64

/* One key. The strings are NULL when the source does not carry them (secret and PEM files never
 * do). Owned by the struct jwt_keys that holds it. */
struct jwt_key {
    enum key_type type;
    enum key_curve curve;    /* EC only */
    unsigned char *material; /* secret bytes (HMAC) or PEM text (RSA/EC), as libjwt takes them */
    size_t material_len;
    char *kid; /* JWK "kid" */
    char *use; /* JWK "use"; only "sig" is usable */
    char *alg; /* JWK "alg"; when set, the only algorithm the key may verify */
};

/* A secret or PEM file fills the first fields with its one key (and leaves set NULL). A JWKS
 * fills set[0..nset) instead; then type is set[0]'s type, curve set[0]'s, material NULL. Use
 * jwt_algs_for_keys() (auth/jwt.h), not the type field, to learn what a set can verify. */
struct jwt_keys {
    enum key_type type;
    unsigned char *material;
    size_t material_len;
    enum key_curve curve;
    struct jwt_key *set;
    size_t nset;
};

/* Where keys come from: exactly one of the three is non-empty. */
struct keys_source {
    const char *secret_file;
    const char *public_key_file;
    const char *jwks_file;
};

/* Loads the one configured source. The secret file's trailing newline is stripped; a secret
 * shorter than 32 bytes is refused. A PEM file must hold a public key (a private key or
 * certificate is refused). A JWKS is checked as jwks_load documents. On failure returns NULL and
 * writes err. */
struct jwt_keys *keys_load_config(const struct keys_source *src, char *err, size_t errlen);
/* keys_load_config without a JWKS; kept for existing callers. */
struct jwt_keys *keys_load(const char *secret_file, const char *public_key_file, char *err, size_t errlen);
void keys_free(struct jwt_keys *keys);

/* The key a token with this kid (NULL: header has none) selects, or NULL. A secret or PEM file's
 * one key is returned whatever the kid (as before JWKS support; it is exposed as a stack copy in
 * *tmp). In a JWKS: the key with that kid; with no kid, the only key when there is one. */
const struct jwt_key *keys_find(const struct jwt_keys *keys, const char *kid, struct jwt_key *tmp);

/* Reads a secret file the way keys_load does (size-limited, trailing CR/LF stripped) without the
 * length minimum or any PEM check; for tools/pgmesh-token. On success *out is malloc'd (caller
 * frees, and should wipe it with OPENSSL_cleanse first) and NUL-terminated past *out_len. */
bool keys_read_secret(const char *path, unsigned char **out, size_t *out_len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* For auth/jwks.c: an EVP_PKEY (OpenSSL's struct evp_pkey_st) re-encoded as one
 * SubjectPublicKeyInfo PEM block, malloc'd and NUL-terminated past *out_len. */
struct evp_pkey_st;
bool keys_encode_pubkey(const struct evp_pkey_st *pkey, unsigned char **out, size_t *out_len)
    __attribute__((warn_unused_result));
/* The curve of an EC EVP_PKEY; KEY_CURVE_NONE for other keys or curves. */
enum key_curve keys_curve_of(const struct evp_pkey_st *pkey);

#endif
