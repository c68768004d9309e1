/* See params.h. Only the parameters below are tracked; everything pgmesh manages is refused
 * earlier by the guard, so it never reaches here. */
#include "proxy/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/fe.h"
#include "policy/quote.h"
#include "policy/sqllex.h"

const char *const param_names[PARAM_COUNT] = {
    "client_encoding", "DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits", "search_path",
    "application_name",
};


static int param_index(const char *name, size_t len)
{
    for (int i = 0; i < PARAM_COUNT; i++)
        if (strlen(param_names[i]) == len && strncasecmp(param_names[i], name, len) == 0)
            return i;
    return -1;
}

static bool set_literal(struct param_set *ps, int i, const char *value);

/* search_path is a list: "a, b" from a startup packet must become SET search_path TO 'a', 'b'
 * (one quoted literal would name a single schema called "a, b"). */
static bool set_list(struct param_set *ps, int i, const char *value)
{
    size_t len = strlen(value), cap = 4 * len + 8;
    char *out = malloc(cap), *item = malloc(len + 1);
    bool ok = out && item;
    size_t o = 0;
    for (const char *p = value; ok && *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
            p++;
            n -= 2;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        if (o > 0) {
            memcpy(out + o, ", ", 2);
            o += 2;
        }
        ok = quote_literal(out + o, cap - o, item, n);
        if (ok)
            o += strlen(out + o);
        p = e ? e + 1 : p + strlen(p);
    }
    free(item);
    if (!ok || o == 0) {
        free(out);
        return ok ? set_literal(ps, i, value) : false;
    }
    if (!set_literal(ps, i, value)) { /* keeps raw for ParameterStatus */
        free(out);
        return false;
    }
    free(ps->sql[i]);
    ps->sql[i] = out;
    return true;
}

static bool set_literal(struct param_set *ps, int i, const char *value)
{
    char *raw = strdup(value);
    if (!raw)
        return false;
    free(ps->raw[i]);
    ps->raw[i] = raw;
    size_t len = strlen(value), cap = 2 * len + 4;
    char *lit = malloc(cap);
    if (!lit || !quote_literal(lit, cap, value, len)) {
        free(lit);
        return false;
    }
    free(ps->sql[i]);
    ps->sql[i] = lit;
    return true;
}

/* options: "-c name=value" pairs (PGOPTIONS syntax; backslash escapes the next character). */
static bool from_options(struct param_set *ps, const char *opts)
{
    size_t n = strlen(opts);
    char *buf = malloc(n + 1);
    if (!buf)
        return false;
    bool ok = true, want_c = false;
    for (size_t i = 0; i < n && ok;) {
        while (i < n && (opts[i] == ' ' || opts[i] == '\t'))
            i++;
        size_t k = 0;
        while (i < n && opts[i] != ' ' && opts[i] != '\t') {
            if (opts[i] == '\\' && i + 1 < n)
                i++;
            buf[k++] = opts[i++];
        }
        buf[k] = '\0';
        const char *arg = buf;
        if (!want_c) {
            if (strcmp(buf, "-c") == 0) {
                want_c = true;
                continue;
            }
            if (strncmp(buf, "-c", 2) == 0)
                arg = buf + 2;
            else if (strncmp(buf, "--", 2) == 0)
                arg = buf + 2;
            else
                continue;
        }
        want_c = false;
        const char *eq = strchr(arg, '=');
        if (eq) {
            int idx = param_index(arg, (size_t)(eq - arg));
            if (idx >= 0)
                ok = idx == PARAM_SEARCH_PATH ? set_list(ps, idx, eq + 1) : set_literal(ps, idx, eq + 1);
        }
    }
    free(buf);
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
        if (idx < 0 || idx == PARAM_APPLICATION_NAME || (idx == 0 && strcasecmp(value, "auto") == 0))
            continue;
        if (!(idx == PARAM_SEARCH_PATH ? set_list(ps, idx, value) : set_literal(ps, idx, value)))
            return false;
    }
    return true;
}

/* One statement's tokens: SET [SESSION] name {TO | =} value..., SET TIME ZONE v, SET NAMES v,
 * RESET name. LOCAL ends with the transaction and is not followed. */
static void track_statement(struct param_set *ps, const char *sql, struct sqltok *t, size_t n)
{
    if (n < 2)
        return;
    size_t i = 1;
    int idx;
    if (sqltok_is(&t[0], "reset")) {
        idx = t[1].kind == SQLTOK_WORD ? param_index(t[1].text, t[1].len) : -1;
        if (idx >= 0 && n == 2) {
            free(ps->sql[idx]);
            ps->sql[idx] = NULL;
        }
        return;
    }
    if (!sqltok_is(&t[0], "set"))
        return;
    if (sqltok_is(&t[1], "session"))
        i = 2;
    if (i >= n || sqltok_is(&t[i], "local"))
        return;
    size_t value_at;
    if (sqltok_is(&t[i], "time") && i + 1 < n && sqltok_is(&t[i + 1], "zone")) {
        idx = 3;
        value_at = i + 2;
    } else if (sqltok_is(&t[i], "names")) {
        idx = 0;
        value_at = i + 1;
    } else {
        idx = t[i].kind == SQLTOK_WORD ? param_index(t[i].text, t[i].len) : -1;
        value_at = i + 2; /* past TO or = */
        if (i + 1 >= n || !(sqltok_is(&t[i + 1], "to") || (t[i + 1].len == 1 && t[i + 1].text[0] == '=')))
            return;
    }
    if (idx < 0 || value_at >= n)
        return;
    free(ps->sql[idx]);
    ps->sql[idx] = NULL;
    if (value_at + 1 == n && (sqltok_is(&t[value_at], "default") || sqltok_is(&t[value_at], "local")))
        return;
    const char *start = t[value_at].text, *end = t[n - 1].text + t[n - 1].len;
    ps->sql[idx] = strndup(start, (size_t)(end - start));
    (void)sql;
}

#define TRACK_TOKENS 64

void params_track_sql(struct param_set *ps, const char *sql, size_t len)
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
                track_statement(ps, sql, toks, n);
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

bool params_write_sync(const struct param_set *want, const struct param_set *have, struct pq_writer *w)
{
    size_t cap = 1;
    for (int i = 0; i < PARAM_COUNT; i++)
        if (!same(want->sql[i], have->sql[i]))
            cap += strlen(param_names[i]) + (want->sql[i] ? strlen(want->sql[i]) : 0) + 16;
    if (cap == 1)
        return false;
    char *q = malloc(cap), *p = q;
    if (!q) {
        w->failed = true;
        return true;
    }
    *p = '\0';
    for (int i = 0; i < PARAM_COUNT; i++) {
        if (same(want->sql[i], have->sql[i]))
            continue;
        p += want->sql[i] ? sprintf(p, "%sSET %s TO %s", p == q ? "" : "; ", param_names[i], want->sql[i])
                          : sprintf(p, "%sRESET %s", p == q ? "" : "; ", param_names[i]);
    }
    fe_write_query(w, q);
    free(q);
    return true;
}

bool params_copy(struct param_set *dst, const struct param_set *src)
{
    for (int i = 0; i < PARAM_COUNT; i++) {
        char *v = src->sql[i] ? strdup(src->sql[i]) : NULL;
        if (src->sql[i] && !v)
            return false;
        free(dst->sql[i]);
        dst->sql[i] = v;
    }
    return true;
}

void params_clear(struct param_set *ps)
{
    for (int i = 0; i < PARAM_COUNT; i++) {
        free(ps->sql[i]);
        free(ps->raw[i]);
        ps->sql[i] = ps->raw[i] = NULL;
    }
}

const char *params_reported(const struct param_set *ps, const char *name)
{
    int i = param_index(name, strlen(name));
    return i >= 0 ? ps->raw[i] : NULL;
}
