/* Unit tests for auth/jwks.c and JWKS key selection in auth/jwt.c: keys made in-process with
 * OpenSSL (two RSA 2048, EC P-256 and P-384), published with jwks_public_jwk, tokens minted with
 * libjwt carrying a kid. Covers selection by kid, unknown and missing kid, kty/alg/curve/use
 * mismatches, and JWKS files that must be refused. The clock is passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <cmocka.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/keys.h"

#define NOW INT64_C(1800000000)
#define CLAIMS "{\"exp\":1900000000,\"tenant\":\"DE\",\"role\":\"analyst\"}"

static struct {
    char dir[64];
    EVP_PKEY *rsa1, *rsa2, *ec256, *ec384;
    char *rsa1_priv, *rsa2_priv, *ec256_priv, *ec384_priv;
    struct jwt_keys *set; /* r1, r2 (RSA), e1 (P-256) */
    struct jwt_policy policy;
    char detail[256];
    char err[512];
} fx;

static char *private_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

static json_t *jwk(EVP_PKEY *pkey, const char *kid, const char *alg)
{
    char err[200];
    json_t *j = jwks_public_jwk(pkey, kid, alg, err, sizeof(err));
    if (j == NULL)
        fail_msg("jwks_public_jwk: %s", err);
    return j;
}

/* {"keys":[...]} of the given JWKs (references stolen) as text, malloc'd. */
static char *set_text(json_t *a, json_t *b, json_t *c)
{
    json_t *keys = json_array();
    json_t *all[] = {a, b, c};
    for (size_t i = 0; i < 3; i++)
        if (all[i] != NULL)
            json_array_append_new(keys, all[i]);
    json_t *root = json_pack("{so}", "keys", keys);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

static struct jwt_keys *parse(const char *text)
{
    fx.err[0] = '\0';
    return jwks_parse(text, strlen(text), fx.err, sizeof(fx.err));
}

static int setup(void **state)
{
    strcpy(fx.dir, "/tmp/pgmesh-test-jwks-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    fx.rsa1 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fx.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!fx.rsa1 || !fx.rsa2 || !fx.ec256 || !fx.ec384)
        return -1;
    fx.rsa1_priv = private_pem(fx.rsa1);
    fx.rsa2_priv = private_pem(fx.rsa2);
    fx.ec256_priv = private_pem(fx.ec256);
    fx.ec384_priv = private_pem(fx.ec384);

    /* Through a file and keys_load_config, as the proxy loads it. */
    char *text = set_text(jwk(fx.rsa1, "r1", NULL), jwk(fx.rsa2, "r2", "RS256"), jwk(fx.ec256, "e1", NULL));
    char path[128];
    snprintf(path, sizeof(path), "%s/set.json", fx.dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    struct keys_source src = {.jwks_file = path};
    fx.set = keys_load_config(&src, fx.err, sizeof(fx.err));
    unlink(path);
    if (fx.set == NULL) {
        fprintf(stderr, "keys_load_config: %s\n", fx.err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    keys_free(fx.set);
    EVP_PKEY *all[] = {fx.rsa1, fx.rsa2, fx.ec256, fx.ec384};
    for (size_t i = 0; i < 4; i++)
        EVP_PKEY_free(all[i]);
    free(fx.rsa1_priv);
    free(fx.rsa2_priv);
    free(fx.ec256_priv);
    free(fx.ec384_priv);
    rmdir(fx.dir);
    return 0;
}

static int reset_policy(void **state)
{
    fx.policy = (struct jwt_policy){
        .alg_mask = JWT_ALLOW_RS256 | JWT_ALLOW_RS384 | JWT_ALLOW_ES256 | JWT_ALLOW_ES384 | JWT_ALLOW_HS256,
        .leeway_s = 30,
    };
    return 0;
}

/* A token signed with priv (PEM) under alg, with kid unless NULL. */
static char *mint(const char *alg, const char *priv, const char *kid)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, CLAIMS), 0);
    if (kid != NULL)
        assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_set_alg(jwt, jwt_str_alg(alg), (const unsigned char *)priv, (int)strlen(priv)), 0);
    char *tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    jwt_free(jwt);
    return tok;
}

static enum jwt_status verify(const struct jwt_keys *keys, const char *tok)
{
    struct jwt_identity id;
    fx.detail[0] = '\0';
    enum jwt_status st = jwt_verify(keys, &fx.policy, tok, strlen(tok), NOW, &id, fx.detail, sizeof(fx.detail));
    if (st == JWT_OK) {
        assert_string_equal(id.tenant, "DE");
        assert_null(id.claims_json);
    }
    return st;
}

/* Mints, verifies against the shared set, frees. */
static enum jwt_status check(const char *alg, const char *priv, const char *kid)
{
    char *tok = mint(alg, priv, kid);
    enum jwt_status st = verify(fx.set, tok);
    free(tok);
    return st;
}

static void test_loaded_set(void **state)
{
    assert_int_equal(fx.set->nset, 3);
    assert_null(fx.set->material);
    assert_string_equal(fx.set->set[1].kid, "r2");
    assert_string_equal(fx.set->set[1].alg, "RS256");
    assert_string_equal(fx.set->set[0].use, "sig");
    assert_int_equal(fx.set->set[2].type, KEY_EC);
    assert_int_equal(fx.set->set[2].curve, KEY_CURVE_P256);
    assert_true(strncmp((char *)fx.set->set[0].material, "-----BEGIN PUBLIC KEY-----", 26) == 0);
    assert_int_equal(jwt_algs_for_keys(fx.set), jwt_algs_for_key(KEY_RSA) | jwt_algs_for_key(KEY_EC));
}

static void test_select_by_kid(void **state)
{
    assert_int_equal(check("RS256", fx.rsa1_priv, "r1"), JWT_OK);
    assert_int_equal(check("RS384", fx.rsa1_priv, "r1"), JWT_OK);
    assert_int_equal(check("RS256", fx.rsa2_priv, "r2"), JWT_OK);
    assert_int_equal(check("ES256", fx.ec256_priv, "e1"), JWT_OK);
    /* The kid picks the key: another key's signature does not verify. */
    assert_int_equal(check("RS256", fx.rsa2_priv, "r1"), JWT_BAD_SIGNATURE);
    assert_int_equal(check("RS256", fx.rsa1_priv, "r2"), JWT_BAD_SIGNATURE);
}

static void test_unknown_kid(void **state)
{
    assert_int_equal(check("RS256", fx.rsa1_priv, "r3"), JWT_UNKNOWN_KEY);
    assert_string_equal(fx.detail, "No key in the key set has kid \"r3\".");
    assert_string_equal(jwt_status_message(JWT_UNKNOWN_KEY), "token key id not recognized");
    assert_int_equal(check("RS256", fx.rsa1_priv, "R1"), JWT_UNKNOWN_KEY);
    assert_int_equal(check("RS256", fx.rsa1_priv, ""), JWT_UNKNOWN_KEY);
    /* A kid that is not a string is malformed. */
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, CLAIMS), 0);
    assert_int_equal(jwt_add_headers_json(jwt, "{\"kid\":7}"), 0);
    assert_int_equal(
        jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)fx.rsa1_priv, (int)strlen(fx.rsa1_priv)), 0);
    char *tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_int_equal(verify(fx.set, tok), JWT_MALFORMED);
    free(tok);
}

static void test_missing_kid(void **state)
{
    assert_int_equal(check("RS256", fx.rsa1_priv, NULL), JWT_UNKNOWN_KEY);
    assert_non_null(strstr(fx.detail, "no \"kid\""));
    assert_non_null(strstr(fx.detail, "3 keys"));
}

static void test_kty_alg_mismatch(void **state)
{
    /* An RS token naming the EC key, and the other way round. */
    assert_int_equal(check("RS256", fx.rsa1_priv, "e1"), JWT_ALG_NOT_ALLOWED);
    assert_non_null(strstr(fx.detail, "\"e1\" (EC)"));
    assert_int_equal(check("ES256", fx.ec256_priv, "r1"), JWT_ALG_NOT_ALLOWED);
    /* Key r2 is published for RS256 only. */
    assert_int_equal(check("RS384", fx.rsa2_priv, "r2"), JWT_ALG_NOT_ALLOWED);
    assert_non_null(strstr(fx.detail, "RS256 only"));
    /* HS256 is allowed by policy but no key in the set can verify it: no key confusion. */
    static const char secret[] = "0123456789abcdef0123456789abcdef";
    const char *pem = (const char *)fx.set->set[0].material; /* public PEM as HMAC secret */
    char *tok = mint("HS256", pem, "r1");
    assert_int_equal(verify(fx.set, tok), JWT_ALG_NOT_ALLOWED);
    free(tok);
    tok = mint("HS256", secret, "r1");
    assert_int_equal(verify(fx.set, tok), JWT_ALG_NOT_ALLOWED);
    free(tok);
}

static void test_curve_mismatch(void **state)
{
    /* ES384 signed with a P-384 key, naming the P-256 key. */
    assert_int_equal(check("ES384", fx.ec384_priv, "e1"), JWT_ALG_NOT_ALLOWED);
    assert_string_equal(fx.detail, "The token's alg ES384 needs a P-384 key; key \"e1\" is P-256.");
    /* ES384 with a P-384 key in its own set. */
    char *text = set_text(jwk(fx.ec384, "e2", NULL), NULL, NULL);
    struct jwt_keys *k = parse(text);
    free(text);
    assert_non_null(k);
    assert_int_equal(k->curve, KEY_CURVE_P384);
    char *tok = mint("ES384", fx.ec384_priv, "e2");
    assert_int_equal(verify(k, tok), JWT_OK);
    free(tok);
    tok = mint("ES256", fx.ec256_priv, "e2");
    assert_int_equal(verify(k, tok), JWT_ALG_NOT_ALLOWED);
    free(tok);
    keys_free(k);
}

static void test_use_not_sig(void **state)
{
    json_t *j = jwk(fx.rsa1, "enc1", NULL);
    json_object_set_new(j, "use", json_string("enc"));
    char *text = set_text(j, jwk(fx.rsa2, "r2", NULL), NULL);
    struct jwt_keys *k = parse(text);
    free(text);
    assert_non_null(k);
    char *tok = mint("RS256", fx.rsa1_priv, "enc1");
    assert_int_equal(verify(k, tok), JWT_UNKNOWN_KEY);
    assert_non_null(strstr(fx.detail, "use \"enc\""));
    free(tok);
    keys_free(k);
}

static void test_single_key(void **state)
{
    /* One key without kid: tokens with or without a kid use it. */
    json_t *j = jwk(fx.ec256, NULL, NULL);
    json_object_del(j, "use");
    char *text = set_text(j, NULL, NULL);
    struct jwt_keys *k = parse(text);
    free(text);
    assert_non_null(k);
    char *tok = mint("ES256", fx.ec256_priv, NULL);
    assert_int_equal(verify(k, tok), JWT_OK);
    free(tok);
    tok = mint("ES256", fx.ec256_priv, "anything");
    assert_int_equal(verify(k, tok), JWT_OK);
    free(tok);
    keys_free(k);
    /* One key with a kid: a token without one uses it; a different kid does not. */
    text = set_text(jwk(fx.ec256, "only", NULL), NULL, NULL);
    k = parse(text);
    free(text);
    tok = mint("ES256", fx.ec256_priv, NULL);
    assert_int_equal(verify(k, tok), JWT_OK);
    free(tok);
    tok = mint("ES256", fx.ec256_priv, "other");
    assert_int_equal(verify(k, tok), JWT_UNKNOWN_KEY);
    free(tok);
    keys_free(k);
}

/* A JWK of pkey with one member replaced (value JSON text) or removed (NULL). */
static char *edited(EVP_PKEY *pkey, const char *kid, const char *member, const char *value)
{
    json_t *j = jwk(pkey, kid, NULL);
    if (value == NULL)
        json_object_del(j, member);
    else
        json_object_set_new(j, member, json_loads(value, JSON_DECODE_ANY, NULL));
    return set_text(j, NULL, NULL);
}

static void test_refused_sets(void **state)
{
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(small);
    struct {
        char *text;
        const char *err_part;
    } cases[] = {
        {strdup("not json"), "not JSON"},
        {strdup("{\"keys\":[]}"), "1 to 64 keys"},
        {strdup("{\"keys\":{}}"), "1 to 64 keys"},
        {strdup("[]"), "1 to 64 keys"},
        {strdup("{\"keys\":[1]}"), "not a JSON object"},
        {strdup("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}"), "private or secret"},
        {strdup("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}"), "\"kty\" must be"},
        {edited(fx.rsa1, "a", "d", "\"AAAA\""), "private or secret"},
        {edited(fx.rsa1, "a", "n", "\"AAAA=\""), "\"n\" is not valid"},
        {edited(fx.rsa1, "a", "e", NULL), "\"e\" must be"},
        {edited(fx.ec256, "a", "crv", "\"P-192\""), "\"crv\" must be"},
        {edited(fx.ec256, "a", "crv", "\"P-384\""), "48 bytes"},
        /* x of the right length but (with overwhelming probability) not on the curve. */
        {edited(fx.ec256, "a", "x", "\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\""), "key 1 (kid \"a\")"},
        {edited(fx.ec256, "a", "kid", "\"\""), "\"kid\" must be"},
        {edited(fx.ec256, "a", "kid", "\"a\\\"b\""), "\"kid\" must be"},
        {edited(fx.ec256, "a", "use", "5"), "\"use\" must be"},
        {edited(small, "a", "use", "\"sig\""), "1024 bits"},
        {set_text(jwk(fx.rsa1, "x", NULL), jwk(fx.rsa2, "x", NULL), NULL), "share kid \"x\""},
        {set_text(jwk(fx.rsa1, "x", NULL), jwk(fx.rsa2, NULL, NULL), NULL), "key 2 has no"},
        {strdup("{\"keys\":[{\"kty\":\"RSA\",\"kty\":\"EC\"}]}"), "not JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct jwt_keys *k = parse(cases[i].text);
        if (k != NULL || strstr(fx.err, cases[i].err_part) == NULL)
            fail_msg("case %zu: %s: err \"%s\" lacks \"%s\"", i, k ? "accepted" : "refused", fx.err,
                     cases[i].err_part);
        free(cases[i].text);
    }
    EVP_PKEY_free(small);
}

/* The members jwks_public_jwk writes, in order, and the keys it refuses. */
static void test_public_jwk_shape(void **state)
{
    static const struct {
        const char *kid, *alg, *want;
    } cases[] = {
        {NULL, NULL, "kty,n,e,use"},
        {"k1", NULL, "kty,n,e,use,kid"},
        {"k1", "RS256", "kty,n,e,use,kid,alg"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = jwk(fx.rsa1, cases[i].kid, cases[i].alg);
        char names[64] = "";
        const char *name;
        json_t *v;
        json_object_foreach(j, name, v)
        {
            strcat(names, names[0] ? "," : "");
            strcat(names, name);
        }
        assert_string_equal(names, cases[i].want);
        assert_string_equal(json_string_value(json_object_get(j, "use")), "sig");
        json_decref(j);
    }
    json_t *j = jwk(fx.ec384, "e", "ES384");
    assert_string_equal(json_string_value(json_object_get(j, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(j, "crv")), "P-384");
    assert_int_equal(json_string_length(json_object_get(j, "x")), 64); /* 48 bytes, padded */
    assert_int_equal(json_string_length(json_object_get(j, "y")), 64);
    assert_null(json_object_get(j, "d"));
    json_decref(j);
    EVP_PKEY *other[] = {EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"),
                         EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
    for (size_t i = 0; i < 2; i++) {
        assert_non_null(other[i]);
        char err[200] = "";
        assert_null(jwks_public_jwk(other[i], "x", NULL, err, sizeof(err)));
        assert_string_equal(err, "key is not RSA or EC on P-256, P-384 or P-521");
        EVP_PKEY_free(other[i]);
    }
}

static void test_load_config_sources(void **state)
{
    struct keys_source none = {NULL, "", NULL};
    assert_null(keys_load_config(&none, fx.err, sizeof(fx.err)));
    assert_non_null(strstr(fx.err, "jwks_file"));
    struct keys_source two = {"a", NULL, "b"};
    assert_null(keys_load_config(&two, fx.err, sizeof(fx.err)));
    assert_non_null(strstr(fx.err, "exactly one"));
    struct keys_source missing = {.jwks_file = "/nonexistent/jwks.json"};
    assert_null(keys_load_config(&missing, fx.err, sizeof(fx.err)));
    assert_non_null(strstr(fx.err, "/nonexistent/jwks.json"));
}

#define T(f) cmocka_unit_test_setup(f, reset_policy)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_loaded_set),       T(test_select_by_kid),    T(test_unknown_kid),         T(test_missing_kid),
        T(test_kty_alg_mismatch), T(test_curve_mismatch),   T(test_use_not_sig),         T(test_single_key),
        T(test_refused_sets),     T(test_public_jwk_shape), T(test_load_config_sources),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
