/* Claim checks on a verified payload (RFC 7519 section 4.1): exp required, nbf optional, both with
 * leeway; iss and aud when configured; tenant and role as short strings matching tenant_pattern
 * (or the built-in identifier shape). Every comparison is written so that no int64 arithmetic
 * can overflow. */
#include "auth/claims.h"
#include "auth/text.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char name_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

bool claims_name_ok(const char *s)
{
    size_t n = strspn(s, name_chars);
    return n > 0 && n <= JWT_CLAIM_MAX && s[n] == '\0';
}

/* Short printable ASCII without quotes or backslashes: safe to echo to a client or a log. */
static bool echo_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > JWT_CLAIM_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

static void format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "Unix time %lld", (long long)t);
}

enum numeric_result { NUM_ABSENT, NUM_OK, NUM_BAD };

/* Values beyond +-2^53 are refused: no real token needs them and they would lose precision. */
#define NUMERIC_LIMIT 9007199254740992.0 /* 2^53 */

static enum numeric_result integer_date(const json_t *v, int64_t *out)
{
    json_int_t i = json_integer_value(v);
    if (i > (json_int_t)NUMERIC_LIMIT || i < -(json_int_t)NUMERIC_LIMIT)
        return NUM_BAD;
    *out = (int64_t)i;
    return NUM_OK;
}

/* Rounds toward the stricter side: up for nbf, down for exp. */
static enum numeric_result real_date(const json_t *v, bool round_up, int64_t *out)
{
    double d = json_real_value(v);
    if (!isfinite(d) || d > NUMERIC_LIMIT || d < -NUMERIC_LIMIT)
        return NUM_BAD;
    int64_t t = (int64_t)d; /* truncates toward zero; no libm needed */
    if (round_up && (double)t < d)
        t++;
    else if (!round_up && (double)t > d)
        t--;
    *out = t;
    return NUM_OK;
}

/* A NumericDate claim as whole seconds. */
static enum numeric_result get_numeric(const json_t *payload, const char *name, bool round_up, int64_t *out)
{
    json_t *v = json_object_get(payload, name);
    if (v == NULL)
        return NUM_ABSENT;
    if (json_is_integer(v))
        return integer_date(v, out);
    if (json_is_real(v))
        return real_date(v, round_up, out);
    return NUM_BAD;
}

static enum jwt_status check_times(const json_t *payload, int64_t now, int64_t leeway, int64_t *exp_out,
                                   char *detail, size_t detail_len)
{
    char when[64];
    int64_t exp, nbf;
    switch (get_numeric(payload, "exp", false, &exp)) {
    case NUM_ABSENT:
        auth_text(detail, detail_len, "Claim \"exp\" is missing.");
        return JWT_MISSING_CLAIM;
    case NUM_BAD:
        auth_text(detail, detail_len, "Claim \"exp\" is not a valid NumericDate.");
        return JWT_BAD_CLAIM;
    case NUM_OK:
        break;
    }
    /* now > exp + leeway, with both sides well inside int64 (|exp| <= 2^53, leeway clamped). */
    if (now - leeway > exp) {
        format_time(exp, when, sizeof(when));
        auth_text(detail, detail_len, "The token expired at %s (leeway %lld s).", when, (long long)leeway);
        return JWT_EXPIRED;
    }
    switch (get_numeric(payload, "nbf", true, &nbf)) {
    case NUM_ABSENT:
        break;
    case NUM_BAD:
        auth_text(detail, detail_len, "Claim \"nbf\" is not a valid NumericDate.");
        return JWT_BAD_CLAIM;
    case NUM_OK:
        if (now + leeway < nbf) {
            format_time(nbf, when, sizeof(when));
            auth_text(detail, detail_len, "The token is not valid before %s (leeway %lld s).", when,
                      (long long)leeway);
            return JWT_NOT_YET_VALID;
        }
        break;
    }
    *exp_out = exp;
    return JWT_OK;
}

static enum jwt_status check_issuer(const json_t *payload, const char *issuer, char *detail, size_t detail_len)
{
    if (issuer == NULL || issuer[0] == '\0')
        return JWT_OK;
    json_t *v = json_object_get(payload, "iss");
    if (v == NULL) {
        auth_text(detail, detail_len, "The token has no \"iss\" claim; an issuer is required.");
        return JWT_WRONG_ISSUER;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), issuer) == 0)
        return JWT_OK;
    if (json_is_string(v) && echo_ok(json_string_value(v)))
        auth_text(detail, detail_len, "The token's issuer \"%s\" is not accepted.", json_string_value(v));
    else
        auth_text(detail, detail_len, "The token's issuer is not accepted.");
    return JWT_WRONG_ISSUER;
}

static bool aud_matches(const json_t *v, const char *audience)
{
    if (json_is_string(v))
        return strcmp(json_string_value(v), audience) == 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (json_is_string(item) && strcmp(json_string_value(item), audience) == 0)
                return true;
        }
    }
    return false;
}

static enum jwt_status check_audience(const json_t *payload, const char *audience, char *detail, size_t detail_len)
{
    if (audience == NULL || audience[0] == '\0')
        return JWT_OK;
    json_t *v = json_object_get(payload, "aud");
    if (v == NULL) {
        auth_text(detail, detail_len, "The token has no \"aud\" claim; an audience is required.");
        return JWT_WRONG_AUDIENCE;
    }
    if (aud_matches(v, audience))
        return JWT_OK;
    auth_text(detail, detail_len, "The token's audience does not include this server's.");
    return JWT_WRONG_AUDIENCE;
}

/* True when the whole of s (len bytes, no NUL inside) matches re. POSIX regexec finds the
 * leftmost-longest match, so a match at 0 ending at len exists exactly when the whole string
 * matches: an unanchored pattern cannot let extra characters through. */
static bool pattern_ok(const regex_t *re, const char *s, size_t len)
{
    regmatch_t m[1];
    return regexec(re, s, 1, m, 0) == 0 && m[0].rm_so == 0 && (size_t)m[0].rm_eo == len;
}

/* Whether a tenant or role claim value has the required shape: the built-in identifier check,
 * or (with a tenant_pattern) 1..JWT_CLAIM_MAX bytes, no NUL, that the pattern matches whole. */
static bool name_value_ok(const json_t *v, const regex_t *pattern)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (s == NULL)
        return false;
    if (pattern == NULL)
        return claims_name_ok(s);
    return len > 0 && len <= JWT_CLAIM_MAX && strlen(s) == len && pattern_ok(pattern, s, len);
}

static void bad_name_detail(const char *name, const struct jwt_policy *policy, char *detail, size_t detail_len)
{
    if (policy->tenant_pattern == NULL) {
        auth_text(detail, detail_len, "Claim \"%s\" must be a string of 1 to %d letters, digits, '_', '.' or '-'.",
                  name, JWT_CLAIM_MAX);
        return;
    }
    const char *src = policy->tenant_pattern_src ? policy->tenant_pattern_src : "";
    auth_text(detail, detail_len,
              "Claim \"%s\" must be a string of 1 to %d bytes matching tenant_pattern "
              "%.100s%s.",
              name, JWT_CLAIM_MAX, src, strlen(src) > 100 ? "..." : "");
}

/* Copies a required identifier-like claim into out (JWT_CLAIM_MAX + 1 bytes). */
static enum jwt_status get_name_claim(const json_t *payload, const char *name, const struct jwt_policy *policy,
                                      char *out, char *detail, size_t detail_len)
{
    json_t *v = json_object_get(payload, name);
    if (v == NULL) {
        auth_text(detail, detail_len, "Claim \"%s\" is missing.", name);
        return JWT_MISSING_CLAIM;
    }
    if (!name_value_ok(v, policy->tenant_pattern)) {
        bad_name_detail(name, policy, detail, detail_len);
        return JWT_BAD_CLAIM;
    }
    snprintf(out, JWT_CLAIM_MAX + 1, "%s", json_string_value(v));
    return JWT_OK;
}

/* Clamped so that now +- leeway stays far from int64 limits for any sane clock. */
static int64_t clamped_leeway(int64_t leeway_s)
{
    if (leeway_s < 0)
        return 0;
    return leeway_s > INT64_C(1) << 40 ? INT64_C(1) << 40 : leeway_s;
}

static const char *claim_name(const char *configured, const char *fallback)
{
    return configured != NULL && configured[0] != '\0' ? configured : fallback;
}

/* sub is for logs only: kept when short and printable, else left empty (never refused). */
static void copy_sub(const json_t *payload, char *out, size_t len)
{
    json_t *sub = json_object_get(payload, "sub");
    if (json_is_string(sub) && echo_ok(json_string_value(sub)))
        snprintf(out, len, "%s", json_string_value(sub));
}

enum jwt_status claims_check(const json_t *payload, const struct jwt_policy *policy, int64_t now,
                             struct jwt_identity *out, char *detail, size_t detail_len)
{
    struct jwt_identity id;
    memset(&id, 0, sizeof(id));
    if (!json_is_object(payload)) {
        auth_text(detail, detail_len, "The token's payload is not a JSON object.");
        return JWT_MALFORMED;
    }
    enum jwt_status st = check_times(payload, now, clamped_leeway(policy->leeway_s), &id.exp, detail, detail_len);
    if (st == JWT_OK)
        st = check_issuer(payload, policy->issuer, detail, detail_len);
    if (st == JWT_OK)
        st = check_audience(payload, policy->audience, detail, detail_len);
    if (st == JWT_OK)
        st = get_name_claim(payload, claim_name(policy->tenant_claim, "tenant"), policy, id.tenant, detail,
                            detail_len);
    if (st == JWT_OK)
        st = get_name_claim(payload, claim_name(policy->role_claim, "role"), policy, id.role, detail, detail_len);
    if (st != JWT_OK)
        return st;
    copy_sub(payload, id.sub, sizeof(id.sub));
    *out = id;
    return JWT_OK;
}
