/* The watcher's judgements on what it read: slot WAL threshold crossings, collation differences
 * between two databases, sizes for log lines. Pure: the caller passes everything in. */
#include "proxy/watchrule.h"

#include <stdio.h>
#include <string.h>

bool watchrule_slot_crossed(bool was_over, int64_t retained_bytes, int64_t warn_bytes, bool *over)
{
    bool now_over = retained_bytes >= 0 && retained_bytes > warn_bytes;
    *over = now_over;
    return now_over && !was_over;
}

/* Appends "what a vs b" to why when a and b differ. */
static bool differs(const char *what, const char *a, const char *b, char *why, size_t whylen, size_t *used)
{
    if (strcmp(a, b) == 0)
        return false;
    if (*used < whylen) {
        int n = snprintf(why + *used, whylen - *used, "%s%s %s vs %s", *used ? "; " : "", what,
                         a[0] ? a : "(none)", b[0] ? b : "(none)");
        if (n > 0)
            *used += (size_t)n;
    }
    return true;
}

bool watchrule_collation_mismatch(const struct watchrule_collation *a, const struct watchrule_collation *b,
                                  char *why, size_t whylen)
{
    size_t used = 0;
    bool mismatch = false;
    if (whylen > 0)
        why[0] = '\0';
    mismatch |= differs("provider", a->provider, b->provider, why, whylen, &used);
    mismatch |= differs("datcollate", a->datcollate, b->datcollate, why, whylen, &used);
    mismatch |= differs("datctype", a->datctype, b->datctype, why, whylen, &used);
    /* The ICU locale decides an ICU database's sort order (datcollate then only sets LC_COLLATE). */
    if (strcmp(a->provider, "icu") == 0 && strcmp(b->provider, "icu") == 0)
        mismatch |= differs("ICU locale", a->icu_locale, b->icu_locale, why, whylen, &used);
    /* Same locale, another library version (ICU, or glibc 2.28's reordering): sorts can differ. */
    if (a->collversion[0] && b->collversion[0] && strcmp(a->provider, b->provider) == 0)
        mismatch |= differs("collation version", a->collversion, b->collversion, why, whylen, &used);
    return mismatch;
}

void watchrule_format_size(int64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"kB", "MB", "GB", "TB", "PB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%lld bytes", (long long)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    if (v < 10.0)
        snprintf(buf, len, "%.1f %s", v, units[u]);
    else
        snprintf(buf, len, "%.0f %s", v, units[u]);
}
