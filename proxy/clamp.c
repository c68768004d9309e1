/* Clamps a client's SET or RESET of a limit to its role's value (see clamp.h). */
#include "proxy/clamp.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/limitset.h"
#include "policy/sqllex.h"
#include "proxy/limits.h"
#include "proxy/textbuf.h"
#include "proxy/units.h"

#define STMT_TOKENS 8

/* The role's value of a limit in the setting's base unit (ms, kB); 0 when the role sets none. */
static int64_t role_value(const struct role_limits *limits, enum limit_kind kind)
{
    switch (kind) {
    case LIMIT_STATEMENT_TIMEOUT:
        return limits->statement_timeout_ms;
    case LIMIT_WORK_MEM:
        return limits->work_mem_kb;
    case LIMIT_IDLE_IN_TRANSACTION:
        return limits->idle_in_transaction_ms;
    }
    return 0;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* What the statement asks for, in the base unit; false when pgmesh cannot read it (the role's value
 * is used then). A bare number is the base unit, as PostgreSQL reads it. */
static bool asked_value(const struct limit_set *ls, int64_t *out)
{
    char v[64];
    if (ls->to_default || ls->value_len >= sizeof v)
        return false;
    memcpy(v, ls->value, ls->value_len);
    v[ls->value_len] = '\0';
    if (all_digits(v))
        return units_parse_count(v, out);
    return ls->kind == LIMIT_WORK_MEM ? units_parse_size_kb(v, out) : units_parse_duration_ms(v, out);
}

/* One statement's tokens t[0..n): appends its clamped version to out (or nothing when it asks for
 * at most the role's value) and returns whether it was clamped. */
static bool clamp_statement(const struct sqltok *t, size_t n, const struct role_limits *limits, const char *role,
                            struct textbuf *out, struct clamp *c)
{
    struct limit_set ls;
    if (!limit_set_read(t, n, &ls))
        return false;
    int64_t max = role_value(limits, ls.kind), asked;
    if (max <= 0)
        return false;
    bool readable = asked_value(&ls, &asked);
    if (readable && asked > 0 && asked <= max)
        return false;
    const char *unit = ls.kind == LIMIT_WORK_MEM ? "kB" : "ms";
    char stmt[128];
    int k = snprintf(stmt, sizeof stmt, "SET %s%s = '%" PRId64 "%s'", ls.local ? "LOCAL " : "",
                     limit_name(ls.kind), max, unit);
    textbuf_put(out, stmt, (size_t)k);
    char asked_text[64];
    snprintf(asked_text, sizeof asked_text, "%.*s", (int)(ls.to_default ? 7 : ls.value_len),
             ls.to_default ? "DEFAULT" : ls.value);
    snprintf(c->notice, sizeof c->notice, "%s is %" PRId64 "%s for role \"%s\": pgmesh set that instead of %s",
             limit_name(ls.kind), max, unit, role, asked_text);
    c->count++;
    return true;
}

void clamp_init(struct clamp *c)
{
    c->sql = NULL;
    c->len = 0;
    c->count = 0;
    c->notice[0] = '\0';
}

bool clamp_sql(const char *sql, size_t len, const struct role_limits *limits, const char *role, struct clamp *out)
{
    clamp_init(out);
    struct textbuf t = {0};
    struct sqllex lx;
    sqllex_init(&lx, sql, len);
    struct sqltok toks[STMT_TOKENS];
    size_t n = 0, copied = 0; /* sql[0..copied) is in t already */
    bool too_many = false;
    for (;;) {
        struct sqltok tok = sqllex_next(&lx);
        if (tok.kind == SQLTOK_UNTERMINATED)
            break; /* PostgreSQL runs none of such a text */
        if (tok.kind == SQLTOK_SEMI || tok.kind == SQLTOK_EOF) {
            if (n && !too_many) {
                size_t start = (size_t)(toks[0].text - sql);
                size_t end = (size_t)(toks[n - 1].text + toks[n - 1].len - sql);
                struct textbuf piece = {0};
                if (clamp_statement(toks, n, limits, role, &piece, out)) {
                    textbuf_put(&t, sql + copied, start - copied);
                    textbuf_put(&t, piece.p, piece.len);
                    copied = end;
                }
                t.failed |= piece.failed;
                free(piece.p);
            }
            n = 0;
            too_many = false;
            if (tok.kind == SQLTOK_EOF)
                break;
            continue;
        }
        if (n < STMT_TOKENS)
            toks[n++] = tok;
        else
            too_many = true;
    }
    if (out->count == 0 || t.failed) {
        free(t.p);
        out->count = 0;
        return !t.failed;
    }
    textbuf_put(&t, sql + copied, len - copied);
    if (t.failed) {
        free(t.p);
        out->count = 0;
        return false;
    }
    out->sql = t.p;
    out->len = t.len;
    return true;
}

void clamp_free(struct clamp *c)
{
    free(c->sql);
    clamp_init(c);
}
