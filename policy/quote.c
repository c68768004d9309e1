/* SQL literal and identifier quoting. Input must be valid UTF-8 without NUL bytes (PostgreSQL
 * would reject or truncate at those), and output never depends on standard_conforming_strings:
 * a value with a backslash is always written as an E'' literal. Nothing is written unless the
 * whole result fits. No I/O, no globals. */
#include "policy/quote.h"

#include <stdint.h>
#include <string.h>

/* Well-formed UTF-8 by lead byte (Unicode, table 3-7): the sequence length and the range of the
 * second byte, narrowed where a wider one would allow an overlong form, a surrogate or a value
 * above U+10FFFF. Later bytes are always 80..BF. Other lead bytes are never valid. */
struct utf8_lead {
    uint8_t first, last; /* lead bytes of this row */
    uint8_t len, lo, hi;
};

static const struct utf8_lead utf8_leads[] = {
    {0xC2, 0xDF, 2, 0x80, 0xBF}, {0xE0, 0xE0, 3, 0xA0, 0xBF}, /* overlong below */
    {0xE1, 0xEC, 3, 0x80, 0xBF}, {0xED, 0xED, 3, 0x80, 0x9F}, /* surrogates above */
    {0xEE, 0xEF, 3, 0x80, 0xBF}, {0xF0, 0xF0, 4, 0x90, 0xBF}, /* overlong below */
    {0xF1, 0xF3, 4, 0x80, 0xBF}, {0xF4, 0xF4, 4, 0x80, 0x8F}, /* above U+10FFFF */
};

static const struct utf8_lead *utf8_lead_of(uint8_t c)
{
    for (size_t i = 0; i < sizeof utf8_leads / sizeof utf8_leads[0]; i++)
        if (c >= utf8_leads[i].first && c <= utf8_leads[i].last)
            return &utf8_leads[i];
    return NULL;
}

static bool is_continuation(uint8_t c)
{
    return c >= 0x80 && c <= 0xBF;
}

/* Length of the UTF-8 sequence at s[0..n), or 0 when it is not a valid, shortest-form encoding
 * of a scalar value (no surrogates, nothing above U+10FFFF) or holds a NUL. */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
{
    if (s[0] == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    const struct utf8_lead *lead = utf8_lead_of(s[0]);
    if (!lead || n < lead->len || s[1] < lead->lo || s[1] > lead->hi)
        return 0;
    for (size_t i = 2; i < lead->len; i++)
        if (!is_continuation(s[i]))
            return 0;
    return lead->len;
}

static bool valid_utf8(const char *src, size_t len)
{
    const uint8_t *s = (const uint8_t *)src;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

static bool is_doubled(char c, const char *doubled)
{
    return c != '\0' && strchr(doubled, c) != NULL;
}

/* Writes prefix, src with every byte in `doubled` written twice, the closing quote and a NUL.
 * The size is computed first so that dst is untouched when the result does not fit. */
static bool quote_into(char *dst, size_t cap, const char *prefix, char close, const char *src, size_t len,
                       const char *doubled)
{
    size_t extra = 0;
    for (size_t i = 0; i < len; i++)
        if (is_doubled(src[i], doubled))
            extra++;
    size_t plen = strlen(prefix);
    /* len + extra cannot overflow: extra <= len and len is an object size */
    size_t need = plen + len + extra + 2; /* closing quote and NUL */
    if (need < len || need > cap)
        return false;
    char *o = dst;
    memcpy(o, prefix, plen);
    o += plen;
    for (size_t i = 0; i < len; i++) {
        if (is_doubled(src[i], doubled))
            *o++ = src[i];
        *o++ = src[i];
    }
    *o++ = close;
    *o = '\0';
    return true;
}

bool quote_literal(char *dst, size_t cap, const char *src, size_t len)
{
    if (!dst || (len && !src) || !valid_utf8(src, len))
        return false;
    bool backslash = len && memchr(src, '\\', len) != NULL;
    if (backslash)
        return quote_into(dst, cap, "E'", '\'', src, len, "'\\");
    return quote_into(dst, cap, "'", '\'', src, len, "'");
}

bool quote_ident(char *dst, size_t cap, const char *src, size_t len)
{
    /* PostgreSQL rejects a zero-length quoted identifier and silently truncates one longer than
     * NAMEDATALEN - 1 bytes, which could turn one name into another; refuse both. */
    if (!dst || len == 0 || len > QUOTE_IDENT_MAX_LEN || !src || !valid_utf8(src, len))
        return false;
    return quote_into(dst, cap, "\"", '"', src, len, "\"");
}
