/* Builds the per-client transaction-start messages. The values come from a verified token and the
 * config; they still only reach SQL through quote_literal. pgmesh uses plain SET (never
 * set_config) so a database owner can revoke set_config from reader roles. */
#include "proxy/txstart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/buf.h"
#include "protocol/fe.h"
#include "protocol/quote.h"

#define SETTING_SQL_MAX 512

static bool append_sql(char **dst, size_t *len, const char *piece)
{
    size_t n = strlen(piece);
    char *p = realloc(*dst, *len + n + 1);
    if (!p)
        return false;
    memcpy(p + *len, piece, n + 1);
    *dst = p;
    *len += n;
    return true;
}

bool txstart_build(struct txstart *t, const struct txstart_setting *settings, size_t n, size_t nclaims)
{
    struct pq_writer w, nw;
    char *set_sql = NULL, *reset_sql = NULL;
    size_t set_len = 0, reset_len = 0;
    wr_init_dynamic(&w);
    wr_init_dynamic(&nw);
    for (size_t i = 0; i < n; i++) {
        char lit[SETTING_SQL_MAX], stmt[SETTING_SQL_MAX * 2];
        if (!quote_literal(lit, sizeof lit, settings[i].value, strlen(settings[i].value)))
            goto fail;
        int k = snprintf(stmt, sizeof stmt, "SET %s = %s", settings[i].name, lit);
        if (k < 0 || (size_t)k >= sizeof stmt)
            goto fail;
        fe_write_parse(&w, "", stmt);
        fe_write_bind_simple(&w, "", "");
        fe_write_execute(&w, "", 0);
        k = snprintf(stmt, sizeof stmt, "%sSET %s = %s", i ? "; " : "", settings[i].name, lit);
        if (k < 0 || (size_t)k >= sizeof stmt || !append_sql(&set_sql, &set_len, stmt))
            goto fail;
        k = snprintf(stmt, sizeof stmt, "%sRESET %s", i ? "; " : "", settings[i].name);
        if (k < 0 || (size_t)k >= sizeof stmt || !append_sql(&reset_sql, &reset_len, stmt))
            goto fail;
    }
    if (!reset_sql)
        goto fail;
    /* reset_sql starts with the claims' RESETs in settings order; keep just those. */
    {
        char *end = reset_sql;
        for (size_t i = 0; i < nclaims && end; i++) {
            end = strchr(end + 1, ';');
        }
        char saved = end ? *end : '\0';
        if (end)
            *end = '\0';
        fe_write_query(&nw, reset_sql);
        if (end)
            *end = saved;
    }
    if (!wr_ok(&w) || !wr_ok(&nw))
        goto fail;
    t->neutral = nw.p;
    t->neutral_len = nw.len;
    t->prefix = w.p;
    t->prefix_len = w.len;
    t->prefix_statements = (int)n;
    t->session_set_sql = set_sql;
    t->session_reset_sql = reset_sql;
    return true;
fail:
    wr_destroy(&w);
    wr_destroy(&nw);
    free(set_sql);
    free(reset_sql);
    return false;
}

void txstart_destroy(struct txstart *t)
{
    free(t->prefix);
    free(t->neutral);
    free(t->session_set_sql);
    free(t->session_reset_sql);
    memset(t, 0, sizeof *t);
}
