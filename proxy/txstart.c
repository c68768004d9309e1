/* Builds the per-client transaction-start Queries. Values come from a verified token and the
 * config; they still only reach SQL through quote_literal. pgmesh uses plain SET (never
 * set_config) so a database owner can revoke set_config from reader roles. */
#include "proxy/txstart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/buf.h"
#include "protocol/fe.h"
#include "policy/quote.h"

#define SETTING_SQL_MAX 512

struct sqlbuf {
    char *p;
    size_t len;
    bool failed;
};

static void sql_add(struct sqlbuf *b, const char *piece)
{
    size_t n = strlen(piece);
    char *p = b->failed ? NULL : realloc(b->p, b->len + n + 1);
    if (!p) {
        b->failed = true;
        return;
    }
    memcpy(p + b->len, piece, n + 1);
    b->p = p;
    b->len += n;
}

static bool to_query_msg(const char *sql, uint8_t **out, size_t *len)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_query(&w, sql);
    if (!wr_ok(&w)) {
        wr_destroy(&w);
        return false;
    }
    *out = w.p;
    *len = w.len;
    return true;
}

bool txstart_build(struct txstart *t, const struct txstart_setting *settings, size_t n, size_t nclaims)
{
    struct sqlbuf set = {0}, sw = {0}, reset = {0};
    bool ok = false;
    for (size_t i = 0; i < nclaims && i < n; i++) {
        char stmt[SETTING_SQL_MAX];
        snprintf(stmt, sizeof stmt, "%sRESET %s", i ? "; " : "", settings[i].name);
        sql_add(&reset, stmt);
    }
    for (size_t i = 0; i < n; i++) {
        /* Quoting at most doubles the text and may add E, two quotes and a NUL. */
        size_t vlen = strlen(settings[i].value), cap = 2 * vlen + 4;
        size_t scap = cap + strlen(settings[i].name) + 16;
        char *lit = malloc(cap), *stmt = malloc(scap);
        bool built = lit && stmt && quote_literal(lit, cap, settings[i].value, vlen);
        int k = built ? snprintf(stmt, scap, "SET %s = %s", settings[i].name, lit) : -1;
        if (k >= 0 && (size_t)k < scap) {
            if (!settings[i].switch_only) {
                if (set.p)
                    sql_add(&set, "; ");
                sql_add(&set, stmt);
            }
            if (i > 0)
                sql_add(&sw, "; ");
            sql_add(&sw, stmt);
        }
        free(lit);
        free(stmt);
        if (k < 0 || (size_t)k >= scap)
            goto done;
    }
    if (set.failed || sw.failed || reset.failed || !set.p || !reset.p)
        goto done;
    struct txstart built = {0};
    if (!to_query_msg(set.p, &built.set_msg, &built.set_len) ||
        !to_query_msg(sw.p, &built.switch_msg, &built.switch_len) ||
        !to_query_msg(reset.p, &built.reset_msg, &built.reset_len)) {
        txstart_destroy(&built);
        goto done;
    }
    *t = built;
    ok = true;
done:
    free(set.p);
    free(sw.p);
    free(reset.p);
    return ok;
}

void txstart_destroy(struct txstart *t)
{
    free(t->set_msg);
    free(t->switch_msg);
    free(t->reset_msg);
    memset(t, 0, sizeof *t);
}
