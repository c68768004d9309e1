/* JWKS loading: jansson parses, OpenSSL 3 builds each key from its parameters (EVP_PKEY_fromdata,
 * then a public-key check), and keys.c re-encodes it as SubjectPublicKeyInfo PEM, the form libjwt
 * verifies with. Whether a key may verify a given token (kid, use, alg, curve) is decided in
 * jwt.c; here the set is only required to be well-formed and public. */
#include "auth/jwks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>

#include "auth/b64url.h"
#include "auth/text.h"

#define JWKS_MIN_RSA_BITS 2048
#define JWKS_MEMBER_MAX 2048 /* decoded bytes: RSA 16384-bit modulus */
#define JWKS_SHORT_MAX 16    /* use, alg */

struct curve_info {
    const char *crv; /* JWK name, also an OpenSSL group name */
    enum key_curve curve;
    size_t coord_len;
};

static const struct curve_info curves[] = {
    {"P-256", KEY_CURVE_P256, 32},
    {"P-384", KEY_CURVE_P384, 48},
    {"P-521", KEY_CURVE_P521, 66},
};
#define N_CURVES (sizeof(curves) / sizeof(curves[0]))
#define EC_COORD_MAX 66 /* P-521's, the longest in curves[] */

/* NULL for a NULL or unsupported name. */
static const struct curve_info *curve_by_name(const char *crv)
{
    for (size_t i = 0; crv != NULL && i < N_CURVES; i++)
        if (strcmp(crv, curves[i].crv) == 0)
            return &curves[i];
    return NULL;
}

/* NULL for KEY_CURVE_NONE. */
static const struct curve_info *curve_by_id(enum key_curve curve)
{
    for (size_t i = 0; i < N_CURVES; i++)
        if (curves[i].curve == curve)
            return &curves[i];
    return NULL;
}

/* Where the error message says which key: "key 2 (kid \"abc\")". */
struct jwk_ctx {
    size_t index;
    const char *kid;
    char *err;
    size_t errlen;
};

static void jwk_err(const struct jwk_ctx *c, const char *what)
{
    if (c->kid != NULL)
        auth_text(c->err, c->errlen, "key %zu (kid \"%s\"): %s", c->index + 1, c->kid, what);
    else
        auth_text(c->err, c->errlen, "key %zu: %s", c->index + 1, what);
}

/* A base64url member decoded into a fresh buffer; NULL with err written when absent or bad. */
static unsigned char *get_b64(const json_t *jwk, const char *name, size_t *out_len, const struct jwk_ctx *c)
{
    char what[96];
    json_t *v = json_object_get(jwk, name);
    size_t len = json_string_length(v);
    if (!json_is_string(v) || len == 0 || len > JWKS_MEMBER_MAX / 3 * 4 + 3) {
        snprintf(what, sizeof(what), "\"%s\" must be a non-empty base64url string", name);
        jwk_err(c, what);
        return NULL;
    }
    unsigned char *buf = malloc(len / 4 * 3 + 3);
    if (buf == NULL || !b64url_decode(json_string_value(v), len, buf, out_len) || *out_len == 0) {
        free(buf);
        snprintf(what, sizeof(what), "\"%s\" is not valid unpadded base64url", name);
        jwk_err(c, what);
        return NULL;
    }
    return buf;
}

/* Builds pkey from params and checks it as a public key. */
static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld, const struct jwk_ctx *c)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        jwk_err(c, "is not a valid public key");
        goto done;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        jwk_err(c, "fails the public key check (point not on the curve, or bad modulus)");
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_from_jwk(const json_t *jwk, const struct jwk_ctx *c)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n = get_b64(jwk, "n", &n_len, c);
    unsigned char *e = n != NULL ? get_b64(jwk, "e", &e_len, c) : NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (e == NULL)
        goto done;
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1) {
        jwk_err(c, "out of memory");
        goto done;
    }
    if (BN_num_bits(bn_n) < JWKS_MIN_RSA_BITS) {
        char what[96];
        snprintf(what, sizeof(what), "RSA key has %d bits; at least %d are required", BN_num_bits(bn_n),
                 JWKS_MIN_RSA_BITS);
        jwk_err(c, what);
        goto done;
    }
    pkey = from_params("RSA", bld, c);
done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return pkey;
}

/* The public key at (x, y), each ci->coord_len bytes, built and checked by from_params. */
static EVP_PKEY *ec_from_point(const struct curve_info *ci, const unsigned char *x, const unsigned char *y,
                               const struct jwk_ctx *c)
{
    unsigned char point[1 + 2 * EC_COORD_MAX];
    point[0] = 0x04; /* uncompressed point, SEC 1 section 2.3.3 */
    memcpy(point + 1, x, ci->coord_len);
    memcpy(point + 1 + ci->coord_len, y, ci->coord_len);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ci->crv, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * ci->coord_len) != 1)
        jwk_err(c, "out of memory");
    else
        pkey = from_params("EC", bld, c);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static EVP_PKEY *ec_from_jwk(const json_t *jwk, enum key_curve *curve, const struct jwk_ctx *c)
{
    const struct curve_info *ci = curve_by_name(json_string_value(json_object_get(jwk, "crv")));
    if (ci == NULL) {
        jwk_err(c, "\"crv\" must be P-256, P-384 or P-521");
        return NULL;
    }
    size_t x_len = 0, y_len = 0;
    unsigned char *x = get_b64(jwk, "x", &x_len, c);
    unsigned char *y = x != NULL ? get_b64(jwk, "y", &y_len, c) : NULL;
    EVP_PKEY *pkey = NULL;
    if (y == NULL)
        goto done;
    /* RFC 7518 section 6.2.1.2: x and y are the full field size, leading zeros kept. */
    if (x_len != ci->coord_len || y_len != ci->coord_len) {
        char what[96];
        snprintf(what, sizeof(what), "\"x\" and \"y\" must be %zu bytes each for %s", ci->coord_len, ci->crv);
        jwk_err(c, what);
        goto done;
    }
    pkey = ec_from_point(ci, x, y, c);
    *curve = ci->curve;
done:
    free(x);
    free(y);
    return pkey;
}

static bool printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* An optional short string member copied into *out (NULL when absent). */
static bool get_opt_string(const json_t *jwk, const char *name, size_t max, char **out, const struct jwk_ctx *c)
{
    json_t *v = json_object_get(jwk, name);
    *out = NULL;
    if (v == NULL)
        return true;
    size_t len = json_string_length(v);
    if (!json_is_string(v) || len == 0 || len > max || !printable(json_string_value(v), len)) {
        char what[96];
        snprintf(what, sizeof(what), "\"%s\" must be a string of 1 to %zu printable characters", name, max);
        jwk_err(c, what);
        return false;
    }
    *out = strdup(json_string_value(v));
    if (*out == NULL) {
        jwk_err(c, "out of memory");
        return false;
    }
    return true;
}

/* Members only private or symmetric keys carry (RFC 7518 sections 6.2.2, 6.3.2, 6.4): a
 * published set must hold none. */
static bool has_private_members(const json_t *jwk)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
        if (json_object_get(jwk, private_members[i]) != NULL)
            return true;
    return false;
}

/* The key a JWK of kty RSA or EC describes; sets k->type (and k->curve for EC). */
static EVP_PKEY *pkey_from_jwk(const json_t *jwk, struct jwt_key *k, const struct jwk_ctx *c)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty != NULL && strcmp(kty, "RSA") == 0) {
        k->type = KEY_RSA;
        return rsa_from_jwk(jwk, c);
    }
    if (kty != NULL && strcmp(kty, "EC") == 0) {
        k->type = KEY_EC;
        return ec_from_jwk(jwk, &k->curve, c);
    }
    jwk_err(c, "\"kty\" must be \"RSA\" or \"EC\" (shared secrets go in secret_file)");
    return NULL;
}

/* Fills *k from one JWK; on failure k holds what was allocated so far (keys_free frees it). */
static bool load_jwk(const json_t *jwk, struct jwt_key *k, struct jwk_ctx *c)
{
    if (!json_is_object(jwk)) {
        jwk_err(c, "is not a JSON object");
        return false;
    }
    if (!get_opt_string(jwk, "kid", KEYS_KID_MAX, &k->kid, c))
        return false;
    c->kid = k->kid;
    if (!get_opt_string(jwk, "use", JWKS_SHORT_MAX, &k->use, c) ||
        !get_opt_string(jwk, "alg", JWKS_SHORT_MAX, &k->alg, c))
        return false;
    if (has_private_members(jwk)) {
        jwk_err(c, "holds private or secret key material; publish public keys only");
        return false;
    }
    EVP_PKEY *pkey = pkey_from_jwk(jwk, k, c);
    if (pkey == NULL)
        return false;
    bool ok = keys_encode_pubkey(pkey, &k->material, &k->material_len);
    EVP_PKEY_free(pkey);
    if (!ok)
        jwk_err(c, "cannot be re-encoded as PEM");
    return ok;
}

/* Every key needs a distinct kid once there are several: a token must name its key. */
static bool check_kids(const struct jwt_keys *keys, char *err, size_t errlen)
{
    if (keys->nset < 2)
        return true;
    for (size_t i = 0; i < keys->nset; i++) {
        if (keys->set[i].kid == NULL) {
            auth_text(err, errlen, "key %zu has no \"kid\"; a set of several keys needs one on each", i + 1);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(keys->set[i].kid, keys->set[j].kid) == 0) {
                auth_text(err, errlen, "keys %zu and %zu share kid \"%s\"", j + 1, i + 1, keys->set[i].kid);
                return false;
            }
        }
    }
    return true;
}

/* The root's "keys" array when it holds 1..KEYS_JWKS_MAX entries; else NULL with err written. */
static json_t *key_list(const json_t *root, char *err, size_t errlen)
{
    json_t *list = json_is_object(root) ? json_object_get(root, "keys") : NULL;
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > KEYS_JWKS_MAX) {
        auth_text(err, errlen, "expected {\"keys\": [...]} with 1 to %d keys", KEYS_JWKS_MAX);
        return NULL;
    }
    return list;
}

/* Every JWK of list loaded into a new set, then the kids checked across the set. */
static struct jwt_keys *load_set(const json_t *list, char *err, size_t errlen)
{
    size_t n = json_array_size(list);
    struct jwt_keys *keys = calloc(1, sizeof(*keys));
    if (keys == NULL || (keys->set = calloc(n, sizeof(*keys->set))) == NULL) {
        auth_text(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        struct jwk_ctx c = {i, NULL, err, errlen};
        keys->nset++;
        if (!load_jwk(json_array_get(list, i), &keys->set[i], &c))
            goto fail;
    }
    if (!check_kids(keys, err, errlen))
        goto fail;
    keys->type = keys->set[0].type;
    keys->curve = keys->set[0].curve;
    return keys;
fail:
    keys_free(keys);
    return NULL;
}

struct jwt_keys *jwks_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        auth_text(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    struct jwt_keys *keys = NULL;
    json_t *list = key_list(root, err, errlen);
    if (list != NULL)
        keys = load_set(list, err, errlen);
    json_decref(root);
    return keys;
}

struct jwt_keys *jwks_load(const char *path, char *err, size_t errlen)
{
    unsigned char *text;
    size_t len;
    char why[256];
    if (!keys_read_secret(path, &text, &len, err, errlen))
        return NULL;
    struct jwt_keys *keys = jwks_parse((const char *)text, len, why, sizeof(why));
    if (keys == NULL)
        auth_text(err, errlen, "JWKS \"%s\": %s", path, why);
    free(text);
    return keys;
}

/* bn as base64url of exactly pad bytes (0: its minimal length) into jwk[name]. */
static bool put_bn(json_t *jwk, const char *name, const BIGNUM *bn, int pad)
{
    int len = pad > 0 ? pad : BN_num_bytes(bn);
    if (len <= 0 || len > JWKS_MEMBER_MAX)
        return false;
    unsigned char bin[JWKS_MEMBER_MAX];
    char text[JWKS_MEMBER_MAX / 3 * 4 + 8];
    if (BN_bn2binpad(bn, bin, len) != len)
        return false;
    b64url_encode(bin, (size_t)len, text);
    return json_object_set_new(jwk, name, json_string(text)) == 0;
}

static bool put_string(json_t *jwk, const char *name, const char *value)
{
    return json_object_set_new(jwk, name, json_string(value)) == 0;
}

/* An optional member: nothing to do when value is NULL. */
static bool put_optional(json_t *jwk, const char *name, const char *value)
{
    return value == NULL || put_string(jwk, name, value);
}

static bool put_rsa_members(json_t *jwk, const EVP_PKEY *pkey)
{
    BIGNUM *n = NULL, *e = NULL;
    bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
              EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && put_string(jwk, "kty", "RSA") &&
              put_bn(jwk, "n", n, 0) && put_bn(jwk, "e", e, 0);
    BN_free(n);
    BN_free(e);
    return ok;
}

/* False for a key on a curve outside the table (or not EC at all). */
static bool put_ec_members(json_t *jwk, const EVP_PKEY *pkey)
{
    const struct curve_info *ci = curve_by_id(keys_curve_of(pkey));
    if (ci == NULL)
        return false;
    BIGNUM *x = NULL, *y = NULL;
    bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
              EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 && put_string(jwk, "kty", "EC") &&
              put_string(jwk, "crv", ci->crv) && put_bn(jwk, "x", x, (int)ci->coord_len) &&
              put_bn(jwk, "y", y, (int)ci->coord_len);
    BN_free(x);
    BN_free(y);
    return ok;
}

/* kty and the public members; any key that is not RSA is tried as EC. */
static bool put_key_members(json_t *jwk, const EVP_PKEY *pkey)
{
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA)
        return put_rsa_members(jwk, pkey);
    return put_ec_members(jwk, pkey);
}

json_t *jwks_public_jwk(const EVP_PKEY *pkey, const char *kid, const char *alg, char *err, size_t errlen)
{
    json_t *jwk = json_object();
    bool ok = jwk != NULL && put_key_members(jwk, pkey) && put_string(jwk, "use", "sig") &&
              put_optional(jwk, "kid", kid) && put_optional(jwk, "alg", alg);
    if (!ok) {
        auth_text(err, errlen, "key is not RSA or EC on P-256, P-384 or P-521");
        json_decref(jwk);
        return NULL;
    }
    return jwk;
}
