/* Verification keys: reads an HMAC secret file or a PEM public key file into an immutable key set
 * (a JWKS file is parsed by jwks.c). PEM input is parsed with OpenSSL and re-encoded as one
 * canonical SubjectPublicKeyInfo block, so what libjwt later sees is exactly the public key we
 * checked. No sockets, no logging. */
#include "auth/keys.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/jwks.h"
#include "auth/text.h"

#define KEYS_MIN_SECRET_LEN 32
#define KEYS_MAX_FILE_LEN (1024 * 1024)
#define KEYS_MIN_RSA_BITS 2048

/* Whole file into a NUL-terminated heap buffer; refuses files over KEYS_MAX_FILE_LEN. */
static bool read_file(const char *path, unsigned char **out, size_t *out_len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        auth_text(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return false;
    }
    unsigned char *buf = malloc(KEYS_MAX_FILE_LEN + 1);
    if (buf == NULL) {
        fclose(f);
        auth_text(err, errlen, "out of memory reading \"%s\"", path);
        return false;
    }
    size_t n = fread(buf, 1, KEYS_MAX_FILE_LEN + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        auth_text(err, errlen, "cannot read \"%s\"", path);
        goto fail;
    }
    if (n > KEYS_MAX_FILE_LEN) {
        auth_text(err, errlen, "\"%s\" is larger than %d bytes", path, KEYS_MAX_FILE_LEN);
        goto fail;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return true;
fail:
    OPENSSL_cleanse(buf, KEYS_MAX_FILE_LEN + 1);
    free(buf);
    return false;
}

bool keys_read_secret(const char *path, unsigned char **out, size_t *out_len, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len;
    if (!read_file(path, &buf, &len, err, errlen))
        return false;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    *out = buf;
    *out_len = len;
    return true;
}

static bool contains(const unsigned char *buf, size_t len, const char *needle)
{
    return memmem(buf, len, needle, strlen(needle)) != NULL;
}

static struct jwt_keys *load_secret(const char *path, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len;
    if (!keys_read_secret(path, &buf, &len, err, errlen))
        return NULL;
    struct jwt_keys *keys = NULL;
    /* A PEM file given as a secret would make its public text an HMAC key: the very key
     * confusion the alg checks exist to stop. Refuse it outright. */
    if (contains(buf, len, "-----BEGIN")) {
        auth_text(err, errlen, "\"%s\" holds a PEM block; give a public key as public_key_file", path);
        goto done;
    }
    if (len < KEYS_MIN_SECRET_LEN) {
        auth_text(err, errlen, "secret in \"%s\" is %zu bytes; at least %d are required", path, len,
                  KEYS_MIN_SECRET_LEN);
        goto done;
    }
    keys = calloc(1, sizeof(*keys));
    if (keys == NULL) {
        auth_text(err, errlen, "out of memory");
        goto done;
    }
    keys->type = KEY_HMAC;
    keys->material = buf;
    keys->material_len = len;
    buf = NULL;
done:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    return keys;
}

bool keys_encode_pubkey(const EVP_PKEY *pkey, unsigned char **out, size_t *out_len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return false;
    bool ok = false;
    char *data;
    if (PEM_write_bio_PUBKEY(bio, pkey) != 1)
        goto done;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || n > INT_MAX)
        goto done;
    unsigned char *copy = malloc((size_t)n + 1);
    if (copy == NULL)
        goto done;
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *out = copy;
    *out_len = (size_t)n;
    ok = true;
done:
    BIO_free(bio);
    return ok;
}

/* PEM_read_bio_PUBKEY skips blocks of other types, so look for them first: a file that also
 * carries a private key or a certificate must not be accepted as if it were a public key. */
static bool only_public_blocks(const unsigned char *buf, size_t len, const char *path, char *err, size_t errlen)
{
    static const char *const certificates[] = {"-----BEGIN CERTIFICATE", "-----BEGIN TRUSTED CERTIFICATE",
                                               "-----BEGIN X509 CERTIFICATE"};
    if (contains(buf, len, "PRIVATE KEY-----")) {
        auth_text(err, errlen, "\"%s\" holds a private key; give the public key only", path);
        return false;
    }
    for (size_t i = 0; i < sizeof(certificates) / sizeof(certificates[0]); i++) {
        if (contains(buf, len, certificates[i])) {
            auth_text(err, errlen,
                      "\"%s\" holds a certificate; extract the public key (openssl x509 -pubkey "
                      "-noout)",
                      path);
            return false;
        }
    }
    return true;
}

static EVP_PKEY *read_pubkey(const unsigned char *buf, size_t len, const char *path, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL) {
        auth_text(err, errlen, "out of memory");
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        auth_text(err, errlen, "\"%s\" holds no PEM public key (\"BEGIN PUBLIC KEY\")", path);
    return pkey;
}

/* RSA of at least KEYS_MIN_RSA_BITS, or EC on a curve a JWS alg is defined on. */
static bool pem_key_type(const EVP_PKEY *pkey, const char *path, enum key_type *type, char *err, size_t errlen)
{
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pkey) < KEYS_MIN_RSA_BITS) {
            auth_text(err, errlen, "RSA key in \"%s\" has %d bits; at least %d are required", path,
                      EVP_PKEY_get_bits(pkey), KEYS_MIN_RSA_BITS);
            return false;
        }
        *type = KEY_RSA;
        return true;
    case EVP_PKEY_EC:
        if (keys_curve_of(pkey) == KEY_CURVE_NONE) {
            auth_text(err, errlen, "EC key in \"%s\" is not on P-256, P-384 or P-521", path);
            return false;
        }
        *type = KEY_EC;
        return true;
    default:
        auth_text(err, errlen, "key in \"%s\" is neither RSA nor EC", path);
        return false;
    }
}

static struct jwt_keys *keys_of_pubkey(const EVP_PKEY *pkey, enum key_type type, const char *path, char *err,
                                       size_t errlen)
{
    struct jwt_keys *keys = calloc(1, sizeof(*keys));
    if (keys == NULL || !keys_encode_pubkey(pkey, &keys->material, &keys->material_len)) {
        free(keys);
        auth_text(err, errlen, "cannot re-encode the key in \"%s\"", path);
        return NULL;
    }
    keys->type = type;
    keys->curve = keys_curve_of(pkey);
    return keys;
}

static struct jwt_keys *load_pem(const char *path, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len;
    if (!read_file(path, &buf, &len, err, errlen))
        return NULL;
    struct jwt_keys *keys = NULL;
    EVP_PKEY *pkey = NULL;
    enum key_type type;
    if (!only_public_blocks(buf, len, path, err, errlen))
        goto done;
    pkey = read_pubkey(buf, len, path, err, errlen);
    if (pkey != NULL && pem_key_type(pkey, path, &type, err, errlen))
        keys = keys_of_pubkey(pkey, type, path, err, errlen);
done:
    EVP_PKEY_free(pkey);
    free(buf);
    return keys;
}

/* OpenSSL group names, both its own and the NIST ones it may report. */
static const struct {
    const char *name;
    enum key_curve curve;
} ec_groups[] = {
    {"prime256v1", KEY_CURVE_P256}, {"P-256", KEY_CURVE_P256},     {"secp384r1", KEY_CURVE_P384},
    {"P-384", KEY_CURVE_P384},      {"secp521r1", KEY_CURVE_P521}, {"P-521", KEY_CURVE_P521},
};

enum key_curve keys_curve_of(const EVP_PKEY *pkey)
{
    char group[64];
    size_t len = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) != 1)
        return KEY_CURVE_NONE;
    for (size_t i = 0; i < sizeof(ec_groups) / sizeof(ec_groups[0]); i++)
        if (strcmp(group, ec_groups[i].name) == 0)
            return ec_groups[i].curve;
    return KEY_CURVE_NONE;
}

static bool nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

struct jwt_keys *keys_load_config(const struct keys_source *src, char *err, size_t errlen)
{
    int n = nonempty(src->secret_file) + nonempty(src->public_key_file) + nonempty(src->jwks_file);
    if (n != 1) {
        auth_text(err, errlen, "exactly one of secret_file, public_key_file and jwks_file must be set");
        return NULL;
    }
    if (nonempty(src->secret_file))
        return load_secret(src->secret_file, err, errlen);
    if (nonempty(src->public_key_file))
        return load_pem(src->public_key_file, err, errlen);
    return jwks_load(src->jwks_file, err, errlen);
}

struct jwt_keys *keys_load(const char *secret_file, const char *public_key_file, char *err, size_t errlen)
{
    bool have_secret = nonempty(secret_file), have_pem = nonempty(public_key_file);
    if (have_secret == have_pem) {
        auth_text(err, errlen, "exactly one of secret_file and public_key_file must be set");
        return NULL;
    }
    struct keys_source src = {secret_file, public_key_file, NULL};
    return keys_load_config(&src, err, errlen);
}

const struct jwt_key *keys_find(const struct jwt_keys *keys, const char *kid, struct jwt_key *tmp)
{
    if (keys->set == NULL) {
        *tmp = (struct jwt_key){.type = keys->type,
                                .curve = keys->curve,
                                .material = keys->material,
                                .material_len = keys->material_len};
        return tmp;
    }
    if (kid == NULL)
        return keys->nset == 1 ? &keys->set[0] : NULL;
    for (size_t i = 0; i < keys->nset; i++) {
        const struct jwt_key *k = &keys->set[i];
        /* A lone key without a kid takes any kid: the issuer names keys we were not told of. */
        if (k->kid == NULL ? keys->nset == 1 : strcmp(k->kid, kid) == 0)
            return k;
    }
    return NULL;
}

static void wipe_free(unsigned char *p, size_t len)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, len);
        free(p);
    }
}

void keys_free(struct jwt_keys *keys)
{
    if (keys == NULL)
        return;
    wipe_free(keys->material, keys->material_len);
    for (size_t i = 0; i < keys->nset; i++) {
        struct jwt_key *k = &keys->set[i];
        free(k->material);
        free(k->kid);
        free(k->use);
        free(k->alg);
    }
    free(keys->set);
    free(keys);
}
