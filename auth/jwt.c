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

/* A token split at its two dots (RFC 7515 section 7.1), with a buffer big enough to decode any
 * of its parts. */
struct token_parts {
    const char *token;
    size_t len;
    size_t header_len; /* token[0..header_len) is the header */
    size_t signed_len; /* token[0..signed_len) is "header.payload", the signing input */
    unsigned char *scratch;
};

/* What the header settles before any key is used. key may point at tmp (keys_find), so a
 * struct header_choice is never copied. */
struct header_choice {
    const struct alg_info *alg;
    const struct jwt_key *key;
    struct jwt_key tmp;
};

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

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The length of p[0..n) without its trailing blanks. */
static size_t trimmed_len(const char *p, size_t n)
{
    while (n > 0 && is_blank(p[n - 1]))
        n--;
    return n;
}

/* One trimmed list entry to its allow-list bit; only_entry picks the wording for "". */
static bool parse_alg_entry(const char *name, size_t len, bool only_entry, unsigned *bit, char *err, size_t errlen)
{
    if (len == 0) {
        auth_text(err, errlen, only_entry ? "algorithm list is empty" : "algorithm list has an empty entry");
        return false;
    }
    if (len == 4 && strncasecmp(name, "none", 4) == 0) {
        auth_text(err, errlen, "algorithm \"none\" (unsigned tokens) can never be allowed");
        return false;
    }
    const struct alg_info *a = alg_by_name(name, len);
    if (a == NULL) {
        auth_text(err, errlen,
                  "unknown algorithm \"%.*s\"; known: HS256, HS384, HS512, RS256, RS384, "
                  "RS512, ES256, ES384, ES512",
                  (int)(len > 32 ? 32 : len), name);
        return false;
    }
    *bit = a->bit;
    return true;
}

bool jwt_parse_algorithms(const char *list, unsigned *mask, char *err, size_t errlen)
{
    unsigned out = 0;
    const char *p = list != NULL ? list : "";
    for (;;) {
        while (is_blank(*p))
            p++;
        size_t n = strcspn(p, ",");
        unsigned bit;
        /* Every accepted entry adds a bit, so out == 0 means nothing came before this one. */
        if (!parse_alg_entry(p, trimmed_len(p, n), out == 0 && p[n] == '\0', &bit, err, errlen))
            return false;
        out |= bit;
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
static enum jwt_status check_alg(const json_t *header, const struct jwt_keys *keys, unsigned alg_mask,
                                 const struct alg_info **out, char *detail, size_t detail_len)
{
    json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg)) {
        auth_text(detail, detail_len, "The token's header has no \"alg\" string.");
        return JWT_MALFORMED;
    }
    /* RFC 7515 section 4.1.11: extensions listed in crit must be understood; we know none. */
    if (json_object_get(header, "crit") != NULL) {
        auth_text(detail, detail_len,
                  "The token's header has a \"crit\" parameter, which is "
                  "not supported.");
        return JWT_MALFORMED;
    }
    const char *name = json_string_value(alg);
    unsigned usable = alg_mask & jwt_algs_for_keys(keys);
    char allowed[96];
    format_mask(usable, allowed, sizeof(allowed));
    if (strcmp(name, "none") == 0) {
        auth_text(detail, detail_len, "The token's alg is none (unsigned); allowed: %s.", allowed);
        return JWT_ALG_NOT_ALLOWED;
    }
    const struct alg_info *a = alg_by_name(name, json_string_length(alg));
    if (a == NULL || !(usable & a->bit)) {
        if (printable_short(name))
            auth_text(detail, detail_len, "The token's alg is %s; allowed: %s.", name, allowed);
        else
            auth_text(detail, detail_len, "The token's alg is not supported; allowed: %s.", allowed);
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

static const char *key_type_name(enum key_type type)
{
    switch (type) {
    case KEY_RSA:
        return "RSA";
    case KEY_EC:
        return "EC";
    case KEY_HMAC:
        break;
    }
    return "HMAC";
}

/* The key the header's kid selects (keys_find); JWT_UNKNOWN_KEY when there is none. */
static enum jwt_status find_key(const json_t *header, const struct jwt_keys *keys, const struct jwt_key **out,
                                struct jwt_key *tmp, char *detail, size_t detail_len)
{
    json_t *kid_v = json_object_get(header, "kid");
    if (kid_v != NULL && !json_is_string(kid_v)) {
        auth_text(detail, detail_len, "The token's \"kid\" header is not a string.");
        return JWT_MALFORMED;
    }
    const char *kid = json_string_value(kid_v);
    const struct jwt_key *k = keys_find(keys, kid, tmp);
    if (k != NULL) {
        *out = k;
        return JWT_OK;
    }
    if (kid == NULL)
        auth_text(detail, detail_len,
                  "The token's header has no \"kid\"; the key set has %zu "
                  "keys.",
                  keys->nset);
    else if (printable_short(kid))
        auth_text(detail, detail_len, "No key in the key set has kid \"%s\".", kid);
    else
        auth_text(detail, detail_len, "No key in the key set has the token's kid.");
    return JWT_UNKNOWN_KEY;
}

/* Whether key k may verify alg a: published for signatures, kty family, EC curve, JWK alg. */
static enum jwt_status key_fits_alg(const struct jwt_key *k, const struct alg_info *a, char *detail,
                                    size_t detail_len)
{
    const char *name = k->kid != NULL ? k->kid : "(no kid)";
    if (k->use != NULL && strcmp(k->use, "sig") != 0) {
        auth_text(detail, detail_len, "Key \"%s\" is published for use \"%s\", not signatures.", name, k->use);
        return JWT_UNKNOWN_KEY;
    }
    if (k->type != a->key) {
        auth_text(detail, detail_len, "The token's alg %s does not fit key \"%s\" (%s).", a->name, name,
                  key_type_name(k->type));
        return JWT_ALG_NOT_ALLOWED;
    }
    if (a->curve != KEY_CURVE_NONE && k->curve != a->curve) {
        auth_text(detail, detail_len, "The token's alg %s needs a %s key; key \"%s\" is %s.", a->name,
                  curve_name(a->curve), name, curve_name(k->curve));
        return JWT_ALG_NOT_ALLOWED;
    }
    if (k->alg != NULL && strcmp(k->alg, a->name) != 0) {
        auth_text(detail, detail_len, "The token's alg is %s; key \"%s\" is for %s only.", a->name, name, k->alg);
        return JWT_ALG_NOT_ALLOWED;
    }
    return JWT_OK;
}

/* The key the header's kid selects, checked against the token's alg. Runs after check_alg,
 * before any signature work. */
static enum jwt_status select_key(const json_t *header, const struct jwt_keys *keys, const struct alg_info *a,
                                  const struct jwt_key **out, struct jwt_key *tmp, char *detail, size_t detail_len)
{
    const struct jwt_key *k = NULL;
    enum jwt_status st = find_key(header, keys, &k, tmp, detail, detail_len);
    if (st == JWT_OK)
        st = key_fits_alg(k, a, detail, detail_len);
    if (st == JWT_OK)
        *out = k;
    return st;
}

/* Our own constant-time HMAC check over "header.payload"; libjwt compares with strcmp. */
static bool hmac_ok(const struct alg_info *a, const struct jwt_key *keys, const char *token, size_t signed_len,
                    const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    const EVP_MD *md = EVP_get_digestbyname(a->digest);
    if (md == NULL || keys->material_len > INT_MAX)
        return false;
    if (HMAC(md, keys->material, (int)keys->material_len, (const unsigned char *)token, signed_len, mac,
             &mac_len) == NULL)
        return false;
    bool ok = sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

/* Signature: our HMAC check first (when HS*), then libjwt, which must agree on the alg. */
static bool signature_ok(const struct alg_info *a, const struct jwt_key *key, const struct token_parts *t)
{
    const char *sig_b64 = t->token + t->signed_len + 1;
    size_t sig_b64_len = t->len - t->signed_len - 1, sig_len;
    if (sig_b64_len == 0 || !b64url_decode(sig_b64, sig_b64_len, t->scratch, &sig_len))
        return false;
    if (a->key == KEY_HMAC && !hmac_ok(a, key, t->token, t->signed_len, t->scratch, sig_len))
        return false;
    if (key->material_len > INT_MAX)
        return false;
    char *copy = strndup(t->token, t->len);
    if (copy == NULL)
        return false;
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, copy, key->material, (int)key->material_len);
    bool ok = rc == 0 && jwt != NULL && jwt_get_alg(jwt) == a->libjwt_alg;
    jwt_free(jwt);
    free(copy);
    return ok;
}

/* The verified payload as compact JSON for SET request.jwt.claims; bounded so a token cannot
 * make the proxy send an arbitrarily long statement. */
static enum jwt_status dump_claims(const json_t *payload, char **out, char *detail, size_t detail_len)
{
    char *json = json_dumps(payload, JSON_COMPACT);
    if (json == NULL) {
        auth_text(detail, detail_len, "The token's claims could not be encoded as JSON.");
        return JWT_MALFORMED;
    }
    size_t n = strlen(json);
    if (n > JWT_CLAIMS_JSON_MAX) {
        auth_text(detail, detail_len,
                  "The token's claims are %zu bytes as JSON; at most %d are "
                  "accepted.",
                  n, JWT_CLAIMS_JSON_MAX);
        free(json);
        return JWT_TOO_LARGE;
    }
    *out = json;
    return JWT_OK;
}

/* The claims of a payload whose signature verified, as an identity; *out written only on JWT_OK. */
static enum jwt_status identity_of(const json_t *payload, const struct jwt_policy *policy, int64_t now,
                                   struct jwt_identity *out, char *detail, size_t detail_len)
{
    struct jwt_identity id;
    enum jwt_status st = claims_check(payload, policy, now, &id, detail, detail_len);
    if (st == JWT_OK && policy->claims_json)
        st = dump_claims(payload, &id.claims_json, detail, detail_len);
    if (st == JWT_OK)
        *out = id;
    return st;
}

/* Splits token[0..len) at its two dots; false unless there are exactly two and no NUL. */
static bool split_token(const char *token, size_t len, struct token_parts *t)
{
    const char *dot1 = token != NULL ? memchr(token, '.', len) : NULL;
    const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL ||
        memchr(token, '\0', len) != NULL)
        return false;
    *t = (struct token_parts){
        .token = token, .len = len, .header_len = (size_t)(dot1 - token), .signed_len = (size_t)(dot2 - token)};
    return true;
}

/* Everything the header decides, before any key is used: its alg against the allow-list and
 * the key set, then the key its kid selects and that key's fit to the alg. */
static enum jwt_status check_header(const struct token_parts *t, const struct jwt_keys *keys, unsigned alg_mask,
                                    struct header_choice *hc, char *detail, size_t detail_len)
{
    json_t *header = decode_json_part(t->token, t->header_len, t->scratch);
    if (header == NULL) {
        auth_text(detail, detail_len, "The token's header is not base64url-encoded JSON.");
        return JWT_MALFORMED;
    }
    enum jwt_status st = check_alg(header, keys, alg_mask, &hc->alg, detail, detail_len);
    if (st == JWT_OK)
        st = select_key(header, keys, hc->alg, &hc->key, &hc->tmp, detail, detail_len);
    json_decref(header);
    return st;
}

/* The signature with the key check_header chose, then the claims; *out only on JWT_OK. */
static enum jwt_status check_payload(const struct token_parts *t, const struct header_choice *hc,
                                     const struct jwt_policy *policy, int64_t now, struct jwt_identity *out,
                                     char *detail, size_t detail_len)
{
    json_t *payload =
        decode_json_part(t->token + t->header_len + 1, t->signed_len - t->header_len - 1, t->scratch);
    if (payload == NULL) {
        auth_text(detail, detail_len, "The token's payload is not base64url-encoded JSON.");
        return JWT_MALFORMED;
    }
    enum jwt_status st;
    if (signature_ok(hc->alg, hc->key, t)) {
        st = identity_of(payload, policy, now, out, detail, detail_len);
    } else {
        auth_text(detail, detail_len,
                  "The token's %s signature does not verify with the "
                  "configured key.",
                  hc->alg->name);
        st = JWT_BAD_SIGNATURE;
    }
    json_decref(payload);
    return st;
}

enum jwt_status jwt_verify(const struct jwt_keys *keys, const struct jwt_policy *policy, const char *token,
                           size_t len, int64_t now, struct jwt_identity *out, char *detail, size_t detail_len)
{
    if (detail != NULL && detail_len > 0)
        detail[0] = '\0';
    if (len > JWT_MAX_TOKEN_LEN) {
        auth_text(detail, detail_len, "The token is %zu bytes; at most %d are accepted.", len, JWT_MAX_TOKEN_LEN);
        return JWT_TOO_LARGE;
    }
    struct token_parts t;
    if (!split_token(token, len, &t)) {
        auth_text(detail, detail_len, "The token is not three base64url parts joined by dots.");
        return JWT_MALFORMED;
    }
    t.scratch = malloc(len / 4 * 3 + 3);
    if (t.scratch == NULL) {
        /* No status means "internal error"; refusing as unverifiable is the safe side. */
        auth_text(detail, detail_len, "The token could not be verified.");
        return JWT_BAD_SIGNATURE;
    }
    struct header_choice hc;
    enum jwt_status st = check_header(&t, keys, policy->alg_mask, &hc, detail, detail_len);
    if (st == JWT_OK)
        st = check_payload(&t, &hc, policy, now, out, detail, detail_len);
    free(t.scratch);
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
    static const char *const messages[] = {
        [JWT_OK] = "token accepted",
        [JWT_MALFORMED] = "token is malformed",
        [JWT_TOO_LARGE] = "token is too large",
        [JWT_ALG_NOT_ALLOWED] = "token algorithm not allowed",
        [JWT_BAD_SIGNATURE] = "token signature is invalid",
        [JWT_EXPIRED] = "token expired",
        [JWT_NOT_YET_VALID] = "token is not yet valid",
        [JWT_WRONG_ISSUER] = "token issuer not accepted",
        [JWT_WRONG_AUDIENCE] = "token audience not accepted",
        [JWT_MISSING_CLAIM] = "token is missing a required claim",
        [JWT_BAD_CLAIM] = "token claim is invalid",
        [JWT_UNKNOWN_KEY] = "token key id not recognized",
    };
    /* A table rather than a switch: a status added to the enum without an entry here gets the
     * generic text, and test_status_messages checks that every known status has its own. */
    if ((size_t)status >= sizeof(messages) / sizeof(messages[0]) || messages[status] == NULL)
        return "token is invalid";
    return messages[status];
}
