/* Durations and sizes as written in the config ("30s", "5min", "128MB"): digits and a unit, no
 * sign, no spaces, no overflow. No I/O. */
#include "proxy/units.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Digits only (no sign, no spaces); false on none or on int64 overflow. */
static bool parse_digits(const char **sp, int64_t *out)
{
    const char *p = *sp;
    int64_t n = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (n > (INT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *sp = p;
    *out = n;
    return true;
}

struct unit {
    const char *name;
    int64_t factor;
};

static bool parse_with_unit(const char *s, const struct unit *units, int64_t *out)
{
    int64_t n;
    if (s == NULL || !parse_digits(&s, &n))
        return false;
    for (const struct unit *u = units; u->name; u++) {
        if (strcmp(s, u->name) == 0) {
            if (n > INT64_MAX / u->factor)
                return false;
            *out = n * u->factor;
            return true;
        }
    }
    return false;
}

bool units_parse_count(const char *s, int64_t *out)
{
    int64_t n;
    if (s == NULL || !parse_digits(&s, &n) || *s != '\0')
        return false;
    *out = n;
    return true;
}

bool units_parse_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct unit units[] = {
        {"", 1000},     {"ms", 1},      {"s", 1000},     {"m", 60000},
        {"min", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0},
    };
    return parse_with_unit(s, units, out_ms);
}

bool units_parse_size_kb(const char *s, int64_t *out_kb)
{
    /* PostgreSQL's memory units, case-sensitive as in postgresql.conf. */
    static const struct unit units[] = {
        {"", 1}, {"kB", 1}, {"MB", 1024}, {"GB", 1024 * 1024}, {"TB", INT64_C(1024) * 1024 * 1024}, {NULL, 0},
    };
    return parse_with_unit(s, units, out_kb);
}
