/* See params.h. Only the parameters below are tracked; everything pgmesh manages is refused
 * earlier by the guard, so it never reaches here. */
#include "proxy/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/quote.h"
#include "policy/sqllex.h"
#include "protocol/fe.h"

const char *const param_names[PARAM_COUNT] = {
    "client_encoding",    "DateStyle",   "IntervalStyle",    "TimeZone",
    "extra_float_digits", "search_path", "application_name",
};

static int param_index(const char *name, size_t len)
{
    for (int i = 0; i < PARAM_COUNT; i++)
        if (strlen(param_names[i]) == len && strncasecmp(param_names[i], name, len) == 0)
            return i;
    return -1;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The value array, allocated on first use; NULL when memory runs out. */
static char **slots(struct param_set *ps)
{
    if (!ps->v)
        ps->v = calloc(2 * PARAM_COUNT, sizeof *ps->v);
    return ps->v;
}

#define SQL_OF(ps, i) ((ps)->v[(i)])
#define RAW_OF(ps, i) ((ps)->v[PARAM_COUNT + (i)])

static bool set_literal(struct param_set *ps, int i, const char *value)
{
    char *raw = slots(ps) ? strdup(value) : NULL;
    if (!raw)
        return false;
    free(RAW_OF(ps, i)); /* may be value itself (RESET ALL): only the copy is read below */
    RAW_OF(ps, i) = raw;
    size_t len = strlen(raw), cap = 2 * len + 4;
    char *lit = malloc(cap);
    if (!lit || !quote_literal(lit, cap, raw, len)) {
        free(lit);
        return false;
    }
    free(SQL_OF(ps, i));
    SQL_OF(ps, i) = lit;
    return true;
}

/* The item of a search_path list that starts at *cursor, without the blanks around it or one
 * pair of double quotes; *cursor moves past its comma (or to the end). */
static const char *list_item(const char **cursor, size_t *len)
{
    const char *p = *cursor;
    while (is_blank(*p))
        p++;
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    *cursor = comma ? comma + 1 : p + n;
    while (n > 0 && is_blank(p[n - 1]))
        n--;
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    *len = n;
    return p;
}

/* A non-empty list as literals, 'a', 'b', malloc'd; NULL when out of memory or an item cannot be
 * quoted. */
static char *quote_list(const char *value)
{
    size_t cap = 4 * strlen(value) + 8, o = 0;
    char *out = malloc(cap);
    bool ok = out != NULL;
    for (const char *p = value; ok && *p;) {
        size_t n;
        const char *item = list_item(&p, &n);
        if (o > 0) {
            memcpy(out + o, ", ", 2);
            o += 2;
        }
        ok = quote_literal(out + o, cap - o, item, n);
        if (ok)
            o += strlen(out + o);
    }
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* search_path is a list: "a, b" from a startup packet must become SET search_path TO 'a', 'b'
 * (one quoted literal would name a single schema called "a, b"). */
static bool set_list(struct param_set *ps, int i, const char *value)
{
    if (!value[0])
        return set_literal(ps, i, value); /* '': an empty list has no items to quote */
    char *list = quote_list(value);
    if (!list || !set_literal(ps, i, value)) { /* set_literal keeps raw for ParameterStatus */
        free(list);
        return false;
    }
    free(SQL_OF(ps, i));
    SQL_OF(ps, i) = list;
    return true;
}

static bool set_value(struct param_set *ps, int i, const char *value)
{
    return i == PARAM_SEARCH_PATH ? set_list(ps, i, value) : set_literal(ps, i, value);
}

/* The blank-separated word of opts[0..n) at *i into buf (room for n + 1), a backslash taking the
 * next character as it is; *i moves past it. */
static void next_word(const char *opts, size_t n, size_t *i, char *buf)
{
    size_t j = *i, k = 0;
    while (j < n && is_blank(opts[j]))
        j++;
    while (j < n && !is_blank(opts[j])) {
        if (opts[j] == '\\' && j + 1 < n)
            j++;
        buf[k++] = opts[j++];
    }
    buf[k] = '\0';
    *i = j;
}

/* The name=value a word of options gives: the word after a bare -c, or what follows -c or -- in
 * the same word; NULL for anything else. *want_c carries a bare -c over to the next word. */
static const char *option_setting(const char *word, bool *want_c)
{
    if (*want_c) {
        *want_c = false;
        return word;
    }
    if (strcmp(word, "-c") == 0) {
        *want_c = true;
        return NULL;
    }
    if (strncmp(word, "-c", 2) == 0 || strncmp(word, "--", 2) == 0)
        return word + 2;
    return NULL;
}

/* Untracked names and settings without '=' are the server's business. */
static bool apply_setting(struct param_set *ps, const char *setting)
{
    const char *eq = strchr(setting, '=');
    int idx = eq ? param_index(setting, (size_t)(eq - setting)) : -1;
    return idx < 0 || set_value(ps, idx, eq + 1);
}

/* options: "-c name=value" pairs (PGOPTIONS syntax; backslash escapes the next character). */
static bool from_options(struct param_set *ps, const char *opts)
{
    size_t n = strlen(opts);
    char *word = malloc(n + 1);
    if (!word)
        return false;
    bool ok = true, want_c = false;
    for (size_t i = 0; i < n && ok;) {
        next_word(opts, n, &i, word);
        const char *setting = option_setting(word, &want_c);
        if (setting)
            ok = apply_setting(ps, setting);
    }
    free(word);
    return ok;
}

bool params_from_startup(struct param_set *ps, const struct startup_packet *pkt)
{
    for (size_t i = 0; i < pkt->nparams; i++) {
        const char *name = (const char *)pkt->params[i].name.p;
        const char *value = (const char *)pkt->params[i].value.p;
        if (strcmp(name, "options") == 0) {
            if (!from_options(ps, value))
                return false;
            continue;
        }
        int idx = param_index(name, strlen(name));
        /* client_encoding "auto" is libpq's to resolve; the server would refuse it. */
        if (idx < 0 || idx == PARAM_APPLICATION_NAME ||
            (idx == PARAM_CLIENT_ENCODING && strcasecmp(value, "auto") == 0))
            continue;
        if (!set_value(ps, idx, value))
            return false;
    }
    return true;
}

static int word_param(const struct sqltok *t)
{
    return t->kind == SQLTOK_WORD ? param_index(t->text, t->len) : -1;
}

/* RESET name: back to the server's default. */
static void track_reset(struct param_set *ps, const struct sqltok *t, size_t n)
{
    int idx = word_param(&t[1]);
    if (idx >= 0 && n == 2 && ps->v) {
        free(SQL_OF(ps, idx));
        SQL_OF(ps, idx) = NULL;
    }
}

/* The tracked parameter a SET names at t[i] (TIME ZONE, NAMES, or name followed by TO or =), and
 * in *value_at where its value starts; -1 for anything else. */
static int set_target(const struct sqltok *t, size_t n, size_t i, size_t *value_at)
{
    if (sqltok_is(&t[i], "time") && i + 1 < n && sqltok_is(&t[i + 1], "zone")) {
        *value_at = i + 2;
        return PARAM_TIMEZONE;
    }
    if (sqltok_is(&t[i], "names")) {
        *value_at = i + 1;
        return PARAM_CLIENT_ENCODING;
    }
    int idx = word_param(&t[i]);
    if (idx < 0 || i + 1 >= n || !(sqltok_is(&t[i + 1], "to") || (t[i + 1].len == 1 && t[i + 1].text[0] == '=')))
        return -1;
    *value_at = i + 2;
    return idx;
}

/* SET [SESSION] ...: the client's own text of the value is kept; DEFAULT and LOCAL mean the
 * server's default. SET LOCAL ends with the transaction and is not followed. */
static void track_set(struct param_set *ps, const struct sqltok *t, size_t n)
{
    size_t i = sqltok_is(&t[1], "session") ? 2 : 1, value_at;
    if (i >= n || sqltok_is(&t[i], "local"))
        return;
    int idx = set_target(t, n, i, &value_at);
    if (idx < 0 || value_at >= n)
        return;
    bool to_default =
        value_at + 1 == n && (sqltok_is(&t[value_at], "default") || sqltok_is(&t[value_at], "local"));
    if (to_default ? !ps->v : !slots(ps))
        return; /* nothing to reset; or out of memory, where the value is not followed as before */
    free(SQL_OF(ps, idx));
    SQL_OF(ps, idx) = NULL;
    if (to_default)
        return;
    const char *start = t[value_at].text, *end = t[n - 1].text + t[n - 1].len;
    SQL_OF(ps, idx) = strndup(start, (size_t)(end - start));
}

/* RESET ALL: every parameter back to the session's start, which for a client is what its startup
 * packet asked for (raw) and for a server connection its own defaults (the caller passes NULL
 * for raw values it does not want). */
static void track_reset_all(struct param_set *ps, bool to_startup)
{
    if (!ps->v)
        return;
    for (int i = 0; i < PARAM_COUNT; i++) {
        if (to_startup && RAW_OF(ps, i) && set_value(ps, i, RAW_OF(ps, i)))
            continue;
        free(SQL_OF(ps, i));
        SQL_OF(ps, i) = NULL;
    }
}

/* One statement's tokens: SET [SESSION] name {TO | =} value..., SET TIME ZONE v, SET NAMES v,
 * RESET name, RESET ALL. */
static void track_statement(struct param_set *ps, const struct sqltok *t, size_t n, bool to_startup)
{
    if (n < 2)
        return;
    if (n == 2 && sqltok_is(&t[0], "reset") && sqltok_is(&t[1], "all"))
        track_reset_all(ps, to_startup);
    else if (sqltok_is(&t[0], "reset"))
        track_reset(ps, t, n);
    else if (sqltok_is(&t[0], "set"))
        track_set(ps, t, n);
}

#define TRACK_TOKENS 64

void params_track_sql(struct param_set *ps, const char *sql, size_t len, bool startup_on_reset_all)
{
    struct sqllex lx;
    struct sqltok toks[TRACK_TOKENS];
    size_t n = 0;
    bool overflow = false;
    sqllex_init(&lx, sql, len);
    for (;;) {
        struct sqltok t = sqllex_next(&lx);
        if (t.kind == SQLTOK_UNTERMINATED)
            return;
        if (t.kind == SQLTOK_SEMI || t.kind == SQLTOK_EOF) {
            if (!overflow)
                track_statement(ps, toks, n, startup_on_reset_all);
            n = 0;
            overflow = false;
            if (t.kind == SQLTOK_EOF)
                return;
            continue;
        }
        if (n < TRACK_TOKENS)
            toks[n++] = t;
        else
            overflow = true;
    }
}

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Room for the sync Query's text, NUL included; 0 when want and have agree. */
static size_t sync_cap(const struct param_set *want, const struct param_set *have)
{
    if (params_both_empty(want, have))
        return 0;
    size_t cap = 0;
    for (int i = 0; i < PARAM_COUNT; i++)
        if (!same(params_sql(want, i), params_sql(have, i)))
            cap += strlen(param_names[i]) + (params_sql(want, i) ? strlen(params_sql(want, i)) : 0) + 16;
    return cap ? cap + 1 : 0;
}

/* The SET or RESET of each parameter that differs, into q[0..cap) as sized by sync_cap. */
static void sync_text(const struct param_set *want, const struct param_set *have, char *q, size_t cap)
{
    size_t o = 0;
    q[0] = '\0';
    for (int i = 0; i < PARAM_COUNT; i++) {
        const char *v = params_sql(want, i);
        if (same(v, params_sql(have, i)))
            continue;
        const char *sep = o ? "; " : "";
        int k = v ? snprintf(q + o, cap - o, "%sSET %s TO %s", sep, param_names[i], v)
                  : snprintf(q + o, cap - o, "%sRESET %s", sep, param_names[i]);
        o += (size_t)k;
    }
}

bool params_write_sync(const struct param_set *want, const struct param_set *have, struct pq_writer *w)
{
    size_t cap = sync_cap(want, have);
    if (!cap)
        return false;
    char *q = malloc(cap);
    if (!q) {
        w->failed = true;
        return true;
    }
    sync_text(want, have, q, cap);
    fe_write_query(w, q);
    free(q);
    return true;
}

bool params_copy(struct param_set *dst, const struct param_set *src)
{
    if (params_both_empty(src, dst))
        return true;
    if (!slots(dst))
        return false;
    for (int i = 0; i < PARAM_COUNT; i++) {
        const char *s = params_sql(src, i);
        char *v = s ? strdup(s) : NULL;
        if (s && !v)
            return false;
        free(SQL_OF(dst, i));
        SQL_OF(dst, i) = v;
    }
    return true;
}

void params_clear(struct param_set *ps)
{
    if (!ps->v)
        return;
    for (int i = 0; i < 2 * PARAM_COUNT; i++)
        free(ps->v[i]);
    free(ps->v);
    ps->v = NULL;
}

const char *params_reported(const struct param_set *ps, const char *name)
{
    int i = param_index(name, strlen(name));
    return i >= 0 && ps->v ? RAW_OF(ps, i) : NULL;
}
