/* Unit tests for auth/jwt.c and auth/claims.c. Keys are made in-process with OpenSSL (RSA 2048,
 * EC P-256, a random HMAC secret) and written to a mkdtemp dir; tokens are minted with libjwt or
 * assembled by hand for malformed cases. The clock is always passed in. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <cmocka.h>

#include "auth/claims.h"
#include "auth/jwt.h"
#include "auth/keys.h"

#define NOW INT64_C(1800000000)

struct fixture {
    char dir[64];
    struct jwt_keys *hmac, *rsa, *ec;
    char *rsa_priv, *ec_priv; /* PEM text for minting */
    struct jwt_policy policy;
};

static struct fixture fx;

static char *path_in(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof(buf), "%s/%s", fx.dir, name);
    return buf;
}

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

static void write_public(EVP_PKEY *pkey, const char *name)
{
    FILE *f = fopen(path_in(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, pkey), 1);
    fclose(f);
}

static struct jwt_keys *load(const char *secret, const char *pub)
{
    char err[256] = "";
    struct jwt_keys *k = keys_load(secret ? path_in(secret) : NULL, pub ? path_in(pub) : NULL, err, sizeof(err));
    if (k == NULL)
        fail_msg("keys_load: %s", err);
    return k;
}

static int setup(void **state)
{
    strcpy(fx.dir, "/tmp/pgmesh-test-jwt-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (rsa == NULL || ec == NULL)
        return -1;
    write_public(rsa, "rsa.pub");
    write_public(ec, "ec.pub");
    fx.rsa_priv = private_pem(rsa);
    fx.ec_priv = private_pem(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);

    unsigned char raw[32];
    char hex[65];
    RAND_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    FILE *f = fopen(path_in("jwt.secret"), "w");
    fprintf(f, "%s\n", hex);
    fclose(f);

    fx.hmac = load("jwt.secret", NULL);
    fx.rsa = load(NULL, "rsa.pub");
    fx.ec = load(NULL, "ec.pub");
    return 0;
}

static int teardown(void **state)
{
    keys_free(fx.hmac);
    keys_free(fx.rsa);
    keys_free(fx.ec);
    free(fx.rsa_priv);
    free(fx.ec_priv);
    unlink(path_in("rsa.pub"));
    unlink(path_in("ec.pub"));
    unlink(path_in("jwt.secret"));
    rmdir(fx.dir);
    return 0;
}

/* Each test starts from this policy. */
static int reset_policy(void **state)
{
    fx.policy = (struct jwt_policy){
        .alg_mask = JWT_ALLOW_HS256 | JWT_ALLOW_RS256 | JWT_ALLOW_ES256,
        .issuer = "",
        .audience = NULL,
        .leeway_s = 30,
        .tenant_claim = "tenant",
        .role_claim = "role",
    };
    return 0;
}

/* A libjwt token with these claims (a JSON object text). */
static char *mint_key(const char *alg, const void *key, size_t keylen, const char *claims)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    jwt_alg_t a = jwt_str_alg(alg);
    assert_int_not_equal(a, JWT_ALG_INVAL);
    assert_int_equal(jwt_set_alg(jwt, a, a == JWT_ALG_NONE ? NULL : key, (int)keylen), 0);
    char *tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    jwt_free(jwt);
    return tok;
}

static char *mint(const char *alg, const char *claims)
{
    if (alg[0] == 'H')
        return mint_key(alg, fx.hmac->material, fx.hmac->material_len, claims);
    if (alg[0] == 'R')
        return mint_key(alg, fx.rsa_priv, strlen(fx.rsa_priv), claims);
    if (alg[0] == 'E')
        return mint_key(alg, fx.ec_priv, strlen(fx.ec_priv), claims);
    return mint_key(alg, NULL, 0, claims);
}

/* Claims valid at NOW plus extra members (",\"k\":v" text or ""). */
static const char *claims(const char *extra)
{
    static char buf[20000];
    snprintf(buf, sizeof(buf),
             "{\"exp\":%lld,\"tenant\":\"DE\",\"role\":\"regional_analyst\",\"sub\":\"alice\"%s}",
             (long long)(NOW + 600), extra);
    return buf;
}

static char detail[256];

static enum jwt_status verify_with(const struct jwt_keys *keys, const char *tok, struct jwt_identity *id)
{
    struct jwt_identity local;
    memset(detail, 0, sizeof(detail));
    enum jwt_status st =
        jwt_verify(keys, &fx.policy, tok, strlen(tok), NOW, id ? id : &local, detail, sizeof(detail));
    if (st != JWT_OK) {
        assert_true(strlen(detail) > 0);
        assert_int_equal(detail[strlen(detail) - 1], '.');
        if (strlen(tok) > 20)
            assert_null(strstr(detail, tok + strlen(tok) - 20)); /* never echo the token */
    }
    return st;
}

static void b64url(const void *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
        else if (out[i] == '=') {
            out[i] = '\0';
            break;
        }
    }
}

/* "b64(header).b64(payload).sig" with sig taken verbatim. */
static char *raw_token(const char *header, const char *payload, const char *sig)
{
    static char buf[4096];
    char h[1024], p[2048];
    b64url(header, strlen(header), h);
    b64url(payload, strlen(payload), p);
    snprintf(buf, sizeof(buf), "%s.%s.%s", h, p, sig);
    return buf;
}

static void test_valid_hs256(void **state)
{
    char *tok = mint("HS256", claims(""));
    struct jwt_identity id;
    assert_int_equal(verify_with(fx.hmac, tok, &id), JWT_OK);
    assert_string_equal(id.tenant, "DE");
    assert_string_equal(id.role, "regional_analyst");
    assert_string_equal(id.sub, "alice");
    assert_int_equal(id.exp, NOW + 600);
    free(tok);
}

static void test_valid_rs256(void **state)
{
    char *tok = mint("RS256", claims(""));
    struct jwt_identity id;
    assert_int_equal(verify_with(fx.rsa, tok, &id), JWT_OK);
    assert_string_equal(id.tenant, "DE");
    free(tok);
}

static void test_valid_es256(void **state)
{
    char *tok = mint("ES256", claims(""));
    struct jwt_identity id;
    assert_int_equal(verify_with(fx.ec, tok, &id), JWT_OK);
    assert_string_equal(id.role, "regional_analyst");
    free(tok);
}

static void test_alg_none(void **state)
{
    char *tok = mint("none", claims(""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_ALG_NOT_ALLOWED);
    assert_non_null(strstr(detail, "none"));
    free(tok);
    /* With a bogus signature part too, and however the mask is set. */
    fx.policy.alg_mask = ~0u;
    assert_int_equal(verify_with(fx.rsa, raw_token("{\"alg\":\"none\"}", claims(""), "AAAA"), NULL),
                     JWT_ALG_NOT_ALLOWED);
}

static void test_alg_outside_allow_list(void **state)
{
    fx.policy.alg_mask = JWT_ALLOW_RS256;
    char *tok = mint("HS256", claims(""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_ALG_NOT_ALLOWED);
    free(tok);
    fx.policy.alg_mask = JWT_ALLOW_HS256;
    tok = mint("HS384", claims(""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_ALG_NOT_ALLOWED);
    assert_string_equal(detail, "The token's alg is HS384; allowed: HS256.");
    free(tok);
    assert_int_equal(verify_with(fx.hmac, raw_token("{\"alg\":\"HS999\"}", claims(""), "AAAA"), NULL),
                     JWT_ALG_NOT_ALLOWED);
    assert_int_equal(verify_with(fx.hmac, raw_token("{\"alg\":\"hs256\"}", claims(""), "AAAA"), NULL),
                     JWT_ALG_NOT_ALLOWED);
}

static void test_alg_key_type_mismatch(void **state)
{
    fx.policy.alg_mask = ~0u;
    char *tok = mint("RS256", claims(""));
    assert_int_equal(verify_with(fx.ec, tok, NULL), JWT_ALG_NOT_ALLOWED);
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_ALG_NOT_ALLOWED);
    free(tok);
    tok = mint("ES256", claims(""));
    assert_int_equal(verify_with(fx.rsa, tok, NULL), JWT_ALG_NOT_ALLOWED);
    free(tok);
}

/* HS256 signed with the RSA public key's PEM text: libjwt alone accepts it; we must not. */
static void test_key_confusion(void **state)
{
    fx.policy.alg_mask = JWT_ALLOW_HS256 | JWT_ALLOW_RS256;
    char *tok = mint_key("HS256", fx.rsa->material, fx.rsa->material_len, claims(""));
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, tok, fx.rsa->material, (int)fx.rsa->material_len), 0);
    jwt_free(jwt);
    assert_int_equal(verify_with(fx.rsa, tok, NULL), JWT_ALG_NOT_ALLOWED);
    assert_string_equal(detail, "The token's alg is HS256; allowed: RS256.");
    free(tok);
}

/* Changes one character to another base64url character. */
static char flip(char *tok, size_t pos)
{
    char was = tok[pos];
    tok[pos] = was == 'A' ? 'B' : 'A';
    return was;
}

static void test_bad_signature(void **state)
{
    static const char *alg_names[] = {"HS256", "RS256", "ES256"};
    const struct jwt_keys *keys[] = {fx.hmac, fx.rsa, fx.ec};
    for (int i = 0; i < 3; i++) {
        char *tok = mint(alg_names[i], claims(""));
        char *sig = strrchr(tok, '.') + 1;
        char was = flip(sig, 3);
        assert_int_equal(verify_with(keys[i], tok, NULL), JWT_BAD_SIGNATURE);
        sig[3] = was;
        assert_int_equal(verify_with(keys[i], tok, NULL), JWT_OK);
        flip(tok, (size_t)(strchr(tok, '.') - tok) + 5); /* in the payload */
        enum jwt_status st = verify_with(keys[i], tok, NULL);
        assert_true(st == JWT_BAD_SIGNATURE || st == JWT_MALFORMED);
        free(tok);
    }
    /* Empty signature, and a signature from another secret. */
    char *tok = mint("HS256", claims(""));
    *(strrchr(tok, '.') + 1) = '\0';
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_SIGNATURE);
    free(tok);
    tok = mint_key("HS256", "another secret that is long enough!!", 36, claims(""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_SIGNATURE);
    free(tok);
}

static void test_expiry(void **state)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"exp\":%lld,\"tenant\":\"DE\",\"role\":\"r\"}", (long long)(NOW - 31));
    char *tok = mint("HS256", buf);
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_EXPIRED);
    assert_string_equal(detail, "The token expired at 2027-01-15 07:59:29 UTC (leeway 30 s).");
    free(tok);
    snprintf(buf, sizeof(buf), "{\"exp\":%lld,\"tenant\":\"DE\",\"role\":\"r\"}", (long long)(NOW - 30));
    tok = mint("HS256", buf);
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_OK);
    fx.policy.leeway_s = 0;
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_EXPIRED);
    free(tok);
    /* Fractional NumericDate: 0.5 s past exp with no leeway is expired. */
    snprintf(buf, sizeof(buf), "{\"exp\":%lld.5,\"tenant\":\"DE\",\"role\":\"r\"}", (long long)(NOW - 1));
    tok = mint("HS256", buf);
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_EXPIRED);
    free(tok);
}

static void test_not_before(void **state)
{
    char *tok = mint("HS256", claims(",\"nbf\":1800000031"));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_NOT_YET_VALID);
    assert_string_equal(detail, "The token is not valid before 2027-01-15 08:00:31 UTC (leeway 30 s).");
    free(tok);
    tok = mint("HS256", claims(",\"nbf\":1800000030"));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_OK);
    free(tok);
    tok = mint("HS256", claims(",\"nbf\":\"soon\""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_CLAIM);
    free(tok);
    /* A fractional nbf rounds up (the stricter side); past 2^53 it is refused. */
    tok = mint("HS256", claims(",\"nbf\":1800000030.5"));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_NOT_YET_VALID);
    free(tok);
    tok = mint("HS256", claims(",\"nbf\":1800000029.5"));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_OK);
    free(tok);
    tok = mint("HS256", claims(",\"nbf\":9007199254740993"));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_CLAIM);
    assert_string_equal(detail, "Claim \"nbf\" is not a valid NumericDate.");
    free(tok);
    tok = mint("HS256", claims(",\"nbf\":-1e300"));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_CLAIM);
    free(tok);
}

static void test_issuer(void **state)
{
    fx.policy.issuer = "https://idp.example";
    char *tok = mint("HS256", claims(",\"iss\":\"https://evil.example\""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_WRONG_ISSUER);
    assert_string_equal(detail, "The token's issuer \"https://evil.example\" is not accepted.");
    free(tok);
    tok = mint("HS256", claims(",\"iss\":\"https://idp.example\""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_OK);
    free(tok);
    tok = mint("HS256", claims(""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_WRONG_ISSUER);
    free(tok);
    tok = mint("HS256", claims(",\"iss\":[\"https://idp.example\"]"));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_WRONG_ISSUER);
    free(tok);
}

static void test_audience(void **state)
{
    fx.policy.audience = "pgmesh";
    static const struct {
        const char *extra;
        enum jwt_status want;
    } cases[] = {
        {",\"aud\":\"pgmesh\"", JWT_OK},
        {",\"aud\":\"pgmesh2\"", JWT_WRONG_AUDIENCE},
        {",\"aud\":[\"other\",\"pgmesh\"]", JWT_OK},
        {",\"aud\":[\"other\",\"PGMESH\"]", JWT_WRONG_AUDIENCE},
        {",\"aud\":[]", JWT_WRONG_AUDIENCE},
        {",\"aud\":7", JWT_WRONG_AUDIENCE},
        {"", JWT_WRONG_AUDIENCE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = mint("HS256", claims(cases[i].extra));
        assert_int_equal(verify_with(fx.hmac, tok, NULL), cases[i].want);
        free(tok);
    }
}

static void test_required_claims(void **state)
{
    static const struct {
        const char *claims;
        enum jwt_status want;
        const char *detail;
    } cases[] = {
        {"{\"tenant\":\"DE\",\"role\":\"r\"}", JWT_MISSING_CLAIM, "Claim \"exp\" is missing."},
        {"{\"exp\":\"tomorrow\",\"tenant\":\"DE\",\"role\":\"r\"}", JWT_BAD_CLAIM, NULL},
        {"{\"exp\":1900000000,\"role\":\"r\"}", JWT_MISSING_CLAIM, "Claim \"tenant\" is missing."},
        {"{\"exp\":1900000000,\"tenant\":\"DE\"}", JWT_MISSING_CLAIM, "Claim \"role\" is missing."},
        {"{\"exp\":1900000000,\"tenant\":42,\"role\":\"r\"}", JWT_BAD_CLAIM, NULL},
        {"{\"exp\":1900000000,\"tenant\":null,\"role\":\"r\"}", JWT_BAD_CLAIM, NULL},
        {"{\"exp\":1900000000,\"tenant\":\"\",\"role\":\"r\"}", JWT_BAD_CLAIM, NULL},
        {"{\"exp\":1900000000,\"tenant\":\"DE';--\",\"role\":\"r\"}", JWT_BAD_CLAIM, NULL},
        {"{\"exp\":1900000000,\"tenant\":\"D E\",\"role\":\"r\"}", JWT_BAD_CLAIM, NULL},
        {"{\"exp\":1900000000,\"tenant\":\"DE\",\"role\":[\"r\"]}", JWT_BAD_CLAIM, NULL},
        {"{\"exp\":1900000000,\"tenant\":\"a.b-c_D9\",\"role\":\"r\"}", JWT_OK, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = mint("HS256", cases[i].claims);
        assert_int_equal(verify_with(fx.hmac, tok, NULL), cases[i].want);
        if (cases[i].detail != NULL)
            assert_string_equal(detail, cases[i].detail);
        free(tok);
    }
}

static void test_claim_length(void **state)
{
    char name[70], extra[200], buf[200];
    memset(name, 'x', 65);
    name[65] = '\0';
    snprintf(buf, sizeof(buf), "{\"exp\":1900000000,\"tenant\":\"%s\",\"role\":\"r\"}", name);
    char *tok = mint("HS256", buf);
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_CLAIM);
    free(tok);
    name[64] = '\0';
    snprintf(buf, sizeof(buf), "{\"exp\":1900000000,\"tenant\":\"%s\",\"role\":\"r\"}", name);
    tok = mint("HS256", buf);
    struct jwt_identity id;
    assert_int_equal(verify_with(fx.hmac, tok, &id), JWT_OK);
    assert_string_equal(id.tenant, name);
    assert_string_equal(id.sub, "");
    free(tok);
    /* An over-long or unprintable sub is dropped, not refused. */
    snprintf(extra, sizeof(extra), "{\"exp\":1900000000,\"tenant\":\"a\",\"role\":\"r\",\"sub\":\"%sx\"}", name);
    tok = mint("HS256", extra);
    assert_int_equal(verify_with(fx.hmac, tok, &id), JWT_OK);
    assert_string_equal(id.sub, "");
    free(tok);
}

static void test_name_shape(void **state)
{
    char name[70];
    memset(name, 'x', 65);
    name[65] = '\0';
    assert_false(claims_name_ok(name)); /* 65 */
    name[64] = '\0';
    assert_true(claims_name_ok(name)); /* 64 */
    static const char *ok[] = {"a", "Z", "0", "_", ".", "-", "regional_analyst", "de-DE.v2"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(claims_name_ok(ok[i]));
    static const char *bad[] = {"", " ", "a b", "a\n", "a'", "a\"", "a;", "\xc3\xa9", "a/b", "a@b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(claims_name_ok(bad[i]));
}

static void test_custom_claim_names(void **state)
{
    fx.policy.tenant_claim = "org";
    fx.policy.role_claim = "https://pgmesh/role";
    char *tok = mint("HS256", "{\"exp\":1900000000,\"org\":\"FR\",\"https://pgmesh/role\":\"x\"}");
    struct jwt_identity id;
    assert_int_equal(verify_with(fx.hmac, tok, &id), JWT_OK);
    assert_string_equal(id.tenant, "FR");
    assert_string_equal(id.role, "x");
    free(tok);
    tok = mint("HS256", claims(""));
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_MISSING_CLAIM);
    assert_string_equal(detail, "Claim \"org\" is missing.");
    free(tok);
}

static void test_tenant_pattern(void **state)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "^[A-Z]{2}$", REG_EXTENDED), 0);
    fx.policy.tenant_pattern = &re;
    fx.policy.tenant_pattern_src = "^[A-Z]{2}$";
    static const struct {
        const char *tenant, *role;
        enum jwt_status want;
    } cases[] = {
        {"\"DE\"", "\"RA\"", JWT_OK},
        {"\"de\"", "\"RA\"", JWT_BAD_CLAIM},
        {"\"DEU\"", "\"RA\"", JWT_BAD_CLAIM},
        {"\"D\"", "\"RA\"", JWT_BAD_CLAIM},
        {"42", "\"RA\"", JWT_BAD_CLAIM},
        {"[\"DE\"]", "\"RA\"", JWT_BAD_CLAIM},
        {"\"DE\"", "\"analyst\"", JWT_BAD_CLAIM}, /* the role claim is held to it too */
    };
    char buf[200];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"exp\":1900000000,\"tenant\":%s,\"role\":%s}", cases[i].tenant,
                 cases[i].role);
        char *tok = mint("HS256", buf);
        struct jwt_identity id;
        assert_int_equal(verify_with(fx.hmac, tok, &id), cases[i].want);
        if (cases[i].want == JWT_OK)
            assert_string_equal(id.tenant, "DE");
        free(tok);
    }
    char *tok = mint("HS256", "{\"exp\":1900000000,\"tenant\":\"DEU\",\"role\":\"RA\"}");
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_CLAIM);
    assert_string_equal(detail, "Claim \"tenant\" must be a string of 1 to 64 bytes matching "
                                "tenant_pattern ^[A-Z]{2}$.");
    free(tok);
    regfree(&re);

    /* Unanchored: the whole claim must still match, and 64 bytes stay the bound. */
    assert_int_equal(regcomp(&re, "[a-z]+", REG_EXTENDED), 0);
    fx.policy.tenant_pattern = &re;
    fx.policy.tenant_pattern_src = "[a-z]+";
    tok = mint("HS256", "{\"exp\":1900000000,\"tenant\":\"de';--\",\"role\":\"r\"}");
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_CLAIM);
    free(tok);
    char name[70];
    memset(name, 'x', 65);
    name[65] = '\0';
    snprintf(buf, sizeof(buf), "{\"exp\":1900000000,\"tenant\":\"%s\",\"role\":\"r\"}", name);
    tok = mint("HS256", buf);
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_BAD_CLAIM);
    free(tok);
    tok = mint("HS256", "{\"exp\":1900000000,\"tenant\":\"de\",\"role\":\"r\"}");
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_OK);
    free(tok);
    regfree(&re);
}

static void test_claims_json(void **state)
{
    const char *payload = "{\"exp\":1900000000,\"tenant\":\"DE\",\"role\":\"r\",\"org\":{\"id\":7}}";
    char *tok = mint("HS256", payload);
    struct jwt_identity id;
    assert_int_equal(verify_with(fx.hmac, tok, &id), JWT_OK);
    assert_null(id.claims_json); /* off by default */
    fx.policy.claims_json = true;
    assert_int_equal(verify_with(fx.hmac, tok, &id), JWT_OK);
    assert_non_null(id.claims_json);
    assert_non_null(strstr(id.claims_json, "\"org\":{\"id\":7}"));
    assert_null(strchr(id.claims_json, ' '));
    struct jwt_identity copy;
    assert_true(jwt_identity_copy(&copy, &id));
    assert_string_equal(copy.claims_json, id.claims_json);
    assert_ptr_not_equal(copy.claims_json, id.claims_json);
    jwt_identity_clear(&copy);
    jwt_identity_clear(&id);
    assert_null(id.claims_json);
    jwt_identity_clear(NULL);
    free(tok);
    /* Over 8 KiB of claims as JSON: refused rather than truncated. */
    char *pad = malloc(9000);
    memset(pad, 'p', 8999);
    pad[8999] = '\0';
    char *extra = malloc(9100);
    snprintf(extra, 9100, ",\"pad\":\"%s\"", pad);
    tok = mint("HS256", claims(extra));
    assert_int_equal(verify_with(fx.hmac, tok, &id), JWT_TOO_LARGE);
    assert_non_null(strstr(detail, "at most 8192"));
    free(tok);
    free(pad);
    free(extra);
}

static void test_too_large(void **state)
{
    char *big = malloc(JWT_MAX_TOKEN_LEN + 2);
    memset(big, 'A', JWT_MAX_TOKEN_LEN + 1);
    big[JWT_MAX_TOKEN_LEN + 1] = '\0';
    assert_int_equal(verify_with(fx.hmac, big, NULL), JWT_TOO_LARGE);
    free(big);
    /* A correctly signed token just over the limit. */
    char *pad = malloc(13000);
    memset(pad, 'p', 12900);
    strcpy(pad + 12900, "\"");
    char extra[13100];
    snprintf(extra, sizeof(extra), ",\"pad\":\"%s", pad);
    free(pad);
    char *tok = mint("HS256", claims(extra));
    assert_true(strlen(tok) > JWT_MAX_TOKEN_LEN);
    assert_int_equal(verify_with(fx.hmac, tok, NULL), JWT_TOO_LARGE);
    free(tok);
}

static void test_malformed(void **state)
{
    const char *good_payload = claims("");
    char hs[64];
    b64url("{\"alg\":\"HS256\"}", 15, hs);
    char twoparts[128], fourparts[256], padded[256];
    snprintf(twoparts, sizeof(twoparts), "%s.eyJ9", hs);
    snprintf(fourparts, sizeof(fourparts), "%s.e30.AAAA.AAAA", hs);
    snprintf(padded, sizeof(padded), "%s=.e30.AAAA", hs);
    const char *cases[] = {
        "", "abcdef", twoparts, fourparts, padded, "..", "!!!!.e30.AAAA", raw_token("hello", good_payload, "AAAA"),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(verify_with(fx.hmac, cases[i], NULL), JWT_MALFORMED);
    static const char *headers[] = {
        "{\"typ\":\"JWT\"}",
        "{\"alg\":256}",
        "[\"HS256\"]",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\"",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        assert_int_equal(verify_with(fx.hmac, raw_token(headers[i], good_payload, "AAAA"), NULL), JWT_MALFORMED);
    /* A good header with a payload that is not a JSON object. */
    assert_int_equal(verify_with(fx.hmac, raw_token("{\"alg\":\"HS256\"}", "[1]", "AAAA"), NULL), JWT_MALFORMED);
    assert_int_equal(verify_with(fx.hmac, raw_token("{\"alg\":\"HS256\"}", "nope", "AAAA"), NULL), JWT_MALFORMED);
    /* Embedded NUL within the given length. */
    char *tok = mint("HS256", claims(""));
    size_t len = strlen(tok);
    tok[len - 2] = '\0';
    struct jwt_identity id;
    assert_int_equal(jwt_verify(fx.hmac, &fx.policy, tok, len, NOW, &id, detail, sizeof(detail)), JWT_MALFORMED);
    free(tok);
}

/* Every prefix of a valid token is refused, never crashes. */
static void test_prefixes(void **state)
{
    char *tok = mint("ES256", claims(""));
    size_t len = strlen(tok);
    struct jwt_identity id;
    for (size_t n = 0; n < len; n++)
        assert_int_not_equal(jwt_verify(fx.ec, &fx.policy, tok, n, NOW, &id, detail, sizeof(detail)), JWT_OK);
    assert_int_equal(jwt_verify(fx.ec, &fx.policy, tok, len, NOW, &id, NULL, 0), JWT_OK);
    free(tok);
}

static void test_parse_algorithms(void **state)
{
    unsigned mask = 12345;
    char err[200];
    assert_true(jwt_parse_algorithms("HS256", &mask, err, sizeof(err)));
    assert_int_equal(mask, JWT_ALLOW_HS256);
    assert_true(jwt_parse_algorithms(" RS256 ,ES512,\tHS384 ", &mask, err, sizeof(err)));
    assert_int_equal(mask, JWT_ALLOW_RS256 | JWT_ALLOW_ES512 | JWT_ALLOW_HS384);
    static const char *bad[] = {"",       "  ",     "none",         "HS256, none", "NONE",  "HS999",
                                "HS256,", ",HS256", "HS256,,RS256", "hs256",       "HS 256"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mask = 777;
        err[0] = '\0';
        assert_false(jwt_parse_algorithms(bad[i], &mask, err, sizeof(err)));
        assert_int_equal(mask, 777);
        assert_true(strlen(err) > 0);
    }
    assert_false(jwt_parse_algorithms("none", &mask, err, sizeof(err)));
    assert_non_null(strstr(err, "none"));
    assert_false(jwt_parse_algorithms("HS999", &mask, err, sizeof(err)));
    assert_non_null(strstr(err, "HS999"));
    /* An empty list and an empty entry in a list are told apart. */
    static const struct {
        const char *list, *err;
    } empties[] = {
        {"", "algorithm list is empty"},
        {" \t ", "algorithm list is empty"},
        {"HS256,", "algorithm list has an empty entry"},
        {" , HS256", "algorithm list has an empty entry"},
        {"HS256, ,RS256", "algorithm list has an empty entry"},
    };
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        assert_false(jwt_parse_algorithms(empties[i].list, &mask, err, sizeof(err)));
        assert_string_equal(err, empties[i].err);
    }
    assert_true(jwt_parse_algorithms(NULL, &mask, err, sizeof(err)) == false);
    assert_string_equal(err, "algorithm list is empty");
    assert_int_equal(jwt_algs_for_key(KEY_RSA), JWT_ALLOW_RS256 | JWT_ALLOW_RS384 | JWT_ALLOW_RS512);
}

static void test_status_messages(void **state)
{
    assert_string_equal(jwt_status_message(JWT_EXPIRED), "token expired");
    assert_string_equal(jwt_status_message(JWT_BAD_SIGNATURE), "token signature is invalid");
    assert_string_equal(jwt_status_message(JWT_ALG_NOT_ALLOWED), "token algorithm not allowed");
    assert_string_equal(jwt_status_message(JWT_MISSING_CLAIM), "token is missing a required claim");
    assert_string_equal(jwt_status_message(JWT_UNKNOWN_KEY), "token key id not recognized");
    for (int s = JWT_MALFORMED; s <= JWT_UNKNOWN_KEY; s++) {
        const char *m = jwt_status_message((enum jwt_status)s);
        assert_true(strncmp(m, "token ", 6) == 0);
        assert_int_not_equal(m[strlen(m) - 1], '.');
    }
    /* Each status has its own message; only a value outside the enum gets the generic one. */
    for (int s = JWT_OK; s <= JWT_UNKNOWN_KEY; s++) {
        const char *m = jwt_status_message((enum jwt_status)s);
        assert_string_not_equal(m, "token is invalid");
        for (int t = JWT_OK; t < s; t++)
            assert_string_not_equal(m, jwt_status_message((enum jwt_status)t));
    }
    assert_string_equal(jwt_status_message(JWT_OK), "token accepted");
    assert_string_equal(jwt_status_message((enum jwt_status)(JWT_UNKNOWN_KEY + 1)), "token is invalid");
    assert_string_equal(jwt_status_message((enum jwt_status) - 1), "token is invalid");
}

#define T(f) cmocka_unit_test_setup(f, reset_policy)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_valid_hs256),
        T(test_valid_rs256),
        T(test_valid_es256),
        T(test_alg_none),
        T(test_alg_outside_allow_list),
        T(test_alg_key_type_mismatch),
        T(test_key_confusion),
        T(test_bad_signature),
        T(test_expiry),
        T(test_not_before),
        T(test_issuer),
        T(test_audience),
        T(test_required_claims),
        T(test_claim_length),
        T(test_name_shape),
        T(test_custom_claim_names),
        T(test_tenant_pattern),
        T(test_claims_json),
        T(test_too_large),
        T(test_malformed),
        T(test_prefixes),
        T(test_parse_algorithms),
        T(test_status_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
