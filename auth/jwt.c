/* JWT verification (RFC 7515/7519): split, strict base64url, header alg checked against the
 * allow-list and the key type before any key is used, then the signature with libjwt (HMAC also
 * compared here in constant time, since libjwt 1.10 uses strcmp), then claims.c. libjwt alone
 * trusts the token's alg and checks no claims; it must never be the first or only check. */
#include "auth/jwt.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/b64url.h"
#include "auth/claims.h"
#include "auth/text.h"

struct alg_info {
    const char *name;
    unsigned bit;
    jwt_alg_t libjwt_alg;
    enum key_type key;
    enum key_curve curve; /* ES*: the one curve it is defined on (RFC 7518 section 3.4) */
    const char *digest;   /* for our own HMAC check */
};

static const struct alg_info algs[] = {
    {"HS256", JWT_ALLOW_HS256, JWT_ALG_HS256, KEY_HMAC, KEY_CURVE_NONE, "SHA256"},
    {"HS384", JWT_ALLOW_HS384, JWT_ALG_HS384, KEY_HMAC, KEY_CURVE_NONE, "SHA384"},
    {"HS512", JWT_ALLOW_HS512, JWT_ALG_HS512, KEY_HMAC, KEY_CURVE_NONE, "SHA512"},
    {"RS256", JWT_ALLOW_RS256, JWT_ALG_RS256, KEY_RSA, KEY_CURVE_NONE, NULL},
    {"RS384", JWT_ALLOW_RS384, JWT_ALG_RS384, KEY_RSA, KEY_CURVE_NONE, NULL},
    {"RS512", JWT_ALLOW_RS512, JWT_ALG_RS512, KEY_RSA, KEY_CURVE_NONE, NULL},
    {"ES256", JWT_ALLOW_ES256, JWT_ALG_ES256, KEY_EC, KEY_CURVE_P256, NULL},
    {"ES384", JWT_ALLOW_ES384, JWT_ALG_ES384, KEY_EC, KEY_CURVE_P384, NULL},
    {"ES512", JWT_ALLOW_ES512, JWT_ALG_ES512, KEY_EC, KEY_CURVE_P521, NULL},
};
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

/* Exact, case-sensitive (RFC 7518 names are). */
static const struct alg_info *alg_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < N_ALGS; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0)
            return &algs[i];
    return NULL;
}

unsigned jwt_algs_for_key(enum key_type type)
{
    unsigned mask = 0;
    for (size_t i = 0; i < N_ALGS; i++)
        if (algs[i].key == type)
            mask |= algs[i].bit;
    return mask;
}

unsigned jwt_algs_for_keys(const struct jwt_keys *keys)
{
    if (keys->set == NULL)
        return jwt_algs_for_key(keys->type);
    unsigned mask = 0;
    for (size_t i = 0; i < keys->nset; i++)
        mask |= jwt_algs_for_key(keys->set[i].type);
    return mask;
}

bool jwt_parse_algorithms(const char *list, unsigned *mask, char *err, size_t errlen)
{
    unsigned out = 0;
    const char *p = list != NULL ? list : "";
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ",");
        size_t end = n;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
            end--;
        if (end == 0) {
            auth_text(err, errlen, out == 0 && p[n] == '\0' ? "algorithm list is empty"
                                                            : "algorithm list has an empty entry");
            return false;
        }
        if (end == 4 && strncasecmp(p, "none", 4) == 0) {
            auth_text(err, errlen, "algorithm \"none\" (unsigned tokens) can never be allowed");
            return false;
        }
        const struct alg_info *a = alg_by_name(p, end);
        if (a == NULL) {
            auth_text(err, errlen,
                     "unknown algorithm \"%.*s\"; known: HS256, HS384, HS512, RS256, RS384, "
                     "RS512, ES256, ES384, ES512",
                     (int)(end > 32 ? 32 : end), p);
            return false;
        }
        out |= a->bit;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    *mask = out;
    return true;
}

/* Decodes one part and parses it as a JSON object; NULL on any failure. */
static json_t *decode_json_part(const char *in, size_t len, unsigned char *scratch)
{
    size_t n;
    if (len == 0 || !b64url_decode(in, len, scratch, &n))
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)scratch, n, JSON_REJECT_DUPLICATES, &jerr);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* "HS256, RS256" for the bits in mask, into buf. */
static void format_mask(unsigned mask, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_ALGS && used < len; i++) {
        if (mask & algs[i].bit) {
            int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", algs[i].name);
            if (w < 0)
                break;
            used += (size_t)w;
        }
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "none for this key type");
}

static bool printable_short(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* The header's alg, checked against the allow-list and the key type. */
static enum jwt_status check_alg(const json_t *header, const struct jwt_keys *keys,
                                 unsigned alg_mask, const struct alg_info **out, char *detail,
                                 size_t detail_len)
{
    json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg)) {
        auth_text(detail, detail_len, "The token's header has no \"alg\" string.");
        return JWT_MALFORMED;
    }
    /* RFC 7515 section 4.1.11: extensions listed in crit must be understood; we know none. */
    if (json_object_get(header, "crit") != NULL) {
        auth_text(detail, detail_len, "The token's header has a \"crit\" parameter, which is "
                                     "not supported.");
        return JWT_MALFORMED;
    }
    const char *name = json_string_value(alg);
    unsigned usable = alg_mask & jwt_algs_for_keys(keys);
    char allowed[96];
    format_mask(usable, allowed, sizeof(allowed));
    if (strcmp(name, "none") == 0) {
        auth_text(detail, detail_len, "The token's alg is none (unsigned); allowed: %s.",
                 allowed);
        return JWT_ALG_NOT_ALLOWED;
    }
    const struct alg_info *a = alg_by_name(name, json_string_length(alg));
    if (a == NULL || !(usable & a->bit)) {
        if (printable_short(name))
            auth_text(detail, detail_len, "The token's alg is %s; allowed: %s.", name, allowed);
        else
            auth_text(detail, detail_len, "The token's alg is not supported; allowed: %s.",
                     allowed);
        return JWT_ALG_NOT_ALLOWED;
    }
    *out = a;
    return JWT_OK;
}

static const char *curve_name(enum key_curve curve)
{
    switch (curve) {
    case KEY_CURVE_P256:
        return "P-256";
    case KEY_CURVE_P384:
        return "P-384";
    case KEY_CURVE_P521:
        return "P-521";
    case KEY_CURVE_NONE:
        break;
    }
    return "another curve";
}

/* The key the header's kid selects, checked against the token's alg: kty family, EC curve, and
 * for a JWK its use and alg. Runs after check_alg, before any signature work. */
static enum jwt_status select_key(const json_t *header, const struct jwt_keys *keys,
                                  const struct alg_info *a, const struct jwt_key **out,
                                  struct jwt_key *tmp, char *detail, size_t detail_len)
{
    json_t *kid_v = json_object_get(header, "kid");
    if (kid_v != NULL && !json_is_string(kid_v)) {
        auth_text(detail, detail_len, "The token's \"kid\" header is not a string.");
        return JWT_MALFORMED;
    }
    const char *kid = json_string_value(kid_v);
    const struct jwt_key *k = keys_find(keys, kid, tmp);
    if (k == NULL) {
        if (kid == NULL)
            auth_text(detail, detail_len, "The token's header has no \"kid\"; the key set has %zu "
                                         "keys.", keys->nset);
        else if (printable_short(kid))
            auth_text(detail, detail_len, "No key in the key set has kid \"%s\".", kid);
        else
            auth_text(detail, detail_len, "No key in the key set has the token's kid.");
        return JWT_UNKNOWN_KEY;
    }
    const char *name = k->kid != NULL ? k->kid : "(no kid)";
    if (k->use != NULL && strcmp(k->use, "sig") != 0) {
        auth_text(detail, detail_len, "Key \"%s\" is published for use \"%s\", not signatures.",
                 name, k->use);
        return JWT_UNKNOWN_KEY;
    }
    if (k->type != a->key) {
        auth_text(detail, detail_len, "The token's alg %s does not fit key \"%s\" (%s).", a->name,
                 name, k->type == KEY_RSA ? "RSA" : k->type == KEY_EC ? "EC" : "HMAC");
        return JWT_ALG_NOT_ALLOWED;
    }
    if (a->curve != KEY_CURVE_NONE && k->curve != a->curve) {
        auth_text(detail, detail_len, "The token's alg %s needs a %s key; key \"%s\" is %s.",
                 a->name, curve_name(a->curve), name, curve_name(k->curve));
        return JWT_ALG_NOT_ALLOWED;
    }
    if (k->alg != NULL && strcmp(k->alg, a->name) != 0) {
        auth_text(detail, detail_len, "The token's alg is %s; key \"%s\" is for %s only.",
                 a->name, name, k->alg);
        return JWT_ALG_NOT_ALLOWED;
    }
    *out = k;
    return JWT_OK;
}

/* Our own constant-time HMAC check over "header.payload"; libjwt compares with strcmp. */
static bool hmac_ok(const struct alg_info *a, const struct jwt_key *keys, const char *token,
                    size_t signed_len, const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const EVP_MD *md = EVP_get_digestbyname(a->digest);
    if (md == NULL || keys->material_len > INT_MAX)
        return false;
    if (HMAC(md, keys->material, (int)keys->material_len, (const unsigned char *)token,
             signed_len, mac, &mac_len) == NULL)
        return false;
    bool ok = sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

/* Signature: our HMAC check first (when HS*), then libjwt, which must agree on the alg. */
static bool signature_ok(const struct alg_info *a, const struct jwt_key *keys,
                         const char *token, size_t len, size_t signed_len, unsigned char *scratch)
{
    const char *sig_b64 = token + signed_len + 1;
    size_t sig_b64_len = len - signed_len - 1, sig_len;
    if (sig_b64_len == 0 || !b64url_decode(sig_b64, sig_b64_len, scratch, &sig_len))
        return false;
    if (a->key == KEY_HMAC && !hmac_ok(a, keys, token, signed_len, scratch, sig_len))
        return false;
    if (keys->material_len > INT_MAX)
        return false;
    char *copy = strndup(token, len);
    if (copy == NULL)
        return false;
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, copy, keys->material, (int)keys->material_len);
    bool ok = rc == 0 && jwt != NULL && jwt_get_alg(jwt) == a->libjwt_alg;
    jwt_free(jwt);
    free(copy);
    return ok;
}

/* The verified payload as compact JSON for SET request.jwt.claims; bounded so a token cannot
 * make the proxy send an arbitrarily long statement. */
static enum jwt_status dump_claims(const json_t *payload, char **out, char *detail,
                                   size_t detail_len)
{
    char *json = json_dumps(payload, JSON_COMPACT);
    if (json == NULL) {
        auth_text(detail, detail_len, "The token's claims could not be encoded as JSON.");
        return JWT_MALFORMED;
    }
    size_t n = strlen(json);
    if (n > JWT_CLAIMS_JSON_MAX) {
        auth_text(detail, detail_len, "The token's claims are %zu bytes as JSON; at most %d are "
                                     "accepted.",
                 n, JWT_CLAIMS_JSON_MAX);
        free(json);
        return JWT_TOO_LARGE;
    }
    *out = json;
    return JWT_OK;
}

enum jwt_status jwt_verify(const struct jwt_keys *keys, const struct jwt_policy *policy,
                           const char *token, size_t len, int64_t now, struct jwt_identity *out,
                           char *detail, size_t detail_len)
{
    if (detail != NULL && detail_len > 0)
        detail[0] = '\0';
    if (len > JWT_MAX_TOKEN_LEN) {
        auth_text(detail, detail_len, "The token is %zu bytes; at most %d are accepted.", len,
                 JWT_MAX_TOKEN_LEN);
        return JWT_TOO_LARGE;
    }
    const char *dot1 = token != NULL ? memchr(token, '.', len) : NULL;
    const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))
                                    : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL ||
        memchr(token, '\0', len) != NULL) {
        auth_text(detail, detail_len, "The token is not three base64url parts joined by dots.");
        return JWT_MALFORMED;
    }
    size_t header_len = (size_t)(dot1 - token);
    size_t signed_len = (size_t)(dot2 - token);

    enum jwt_status st;
    json_t *header = NULL, *payload = NULL;
    const struct alg_info *alg = NULL;
    const struct jwt_key *key = NULL;
    struct jwt_key tmp;
    struct jwt_identity id;
    unsigned char *scratch = malloc(len / 4 * 3 + 3);
    if (scratch == NULL) {
        /* No status means "internal error"; refusing as unverifiable is the safe side. */
        auth_text(detail, detail_len, "The token could not be verified.");
        return JWT_BAD_SIGNATURE;
    }
    header = decode_json_part(token, header_len, scratch);
    if (header == NULL) {
        auth_text(detail, detail_len, "The token's header is not base64url-encoded JSON.");
        st = JWT_MALFORMED;
        goto done;
    }
    st = check_alg(header, keys, policy->alg_mask, &alg, detail, detail_len);
    if (st == JWT_OK)
        st = select_key(header, keys, alg, &key, &tmp, detail, detail_len);
    if (st != JWT_OK)
        goto done;
    payload = decode_json_part(dot1 + 1, signed_len - header_len - 1, scratch);
    if (payload == NULL) {
        auth_text(detail, detail_len, "The token's payload is not base64url-encoded JSON.");
        st = JWT_MALFORMED;
        goto done;
    }
    if (!signature_ok(alg, key, token, len, signed_len, scratch)) {
        auth_text(detail, detail_len, "The token's %s signature does not verify with the "
                                     "configured key.",
                 alg->name);
        st = JWT_BAD_SIGNATURE;
        goto done;
    }
    st = claims_check(payload, policy, now, &id, detail, detail_len);
    if (st == JWT_OK && policy->claims_json)
        st = dump_claims(payload, &id.claims_json, detail, detail_len);
    if (st == JWT_OK)
        *out = id;
done:
    json_decref(header);
    json_decref(payload);
    free(scratch);
    return st;
}

void jwt_identity_clear(struct jwt_identity *id)
{
    if (id == NULL)
        return;
    free(id->claims_json);
    memset(id, 0, sizeof(*id));
}

bool jwt_identity_copy(struct jwt_identity *dst, const struct jwt_identity *src)
{
    char *json = NULL;
    if (src->claims_json != NULL && (json = strdup(src->claims_json)) == NULL)
        return false;
    *dst = *src;
    dst->claims_json = json;
    return true;
}

const char *jwt_status_message(enum jwt_status status)
{
    switch (status) {
    case JWT_OK:
        return "token accepted";
    case JWT_MALFORMED:
        return "token is malformed";
    case JWT_TOO_LARGE:
        return "token is too large";
    case JWT_ALG_NOT_ALLOWED:
        return "token algorithm not allowed";
    case JWT_BAD_SIGNATURE:
        return "token signature is invalid";
    case JWT_EXPIRED:
        return "token expired";
    case JWT_NOT_YET_VALID:
        return "token is not yet valid";
    case JWT_WRONG_ISSUER:
        return "token issuer not accepted";
    case JWT_WRONG_AUDIENCE:
        return "token audience not accepted";
    case JWT_MISSING_CLAIM:
        return "token is missing a required claim";
    case JWT_BAD_CLAIM:
        return "token claim is invalid";
    case JWT_UNKNOWN_KEY:
        return "token key id not recognized";
    }
    return "token is invalid";
}
