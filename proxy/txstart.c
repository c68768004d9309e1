/* Builds the per-client transaction-start Queries. Values come from a verified token and the
 * config; they still only reach SQL through quote_literal. pgmesh uses plain SET (never
 * set_config) so a database owner can revoke set_config from reader roles. */
#include "proxy/txstart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "policy/managed.h"
#include "policy/quote.h"
#include "protocol/buf.h"
#include "protocol/fe.h"
#include "proxy/config.h"

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

/* One setting's value for this client, from the managed table's source; NULL when the role does
 * not set it. buf holds formatted numbers. */
static const char *managed_value(enum managed_source src, const struct jwt_identity *id,
                                 const struct role_config *role, char *buf, size_t cap)
{
    switch (src) {
    case MANAGED_TENANT: return id->tenant;
    case MANAGED_ROLE: return id->role;
    case MANAGED_CLAIMS_JSON: return id->claims_json;
    case MANAGED_STATEMENT_TIMEOUT:
        if (role->statement_timeout_ms <= 0)
            return NULL;
        snprintf(buf, cap, "%lld", (long long)role->statement_timeout_ms);
        return buf;
    case MANAGED_WORK_MEM:
        if (role->work_mem_kb <= 0)
            return NULL;
        snprintf(buf, cap, "%lldkB", (long long)role->work_mem_kb);
        return buf;
    case MANAGED_PROTECTED: return NULL;
    }
    return NULL;
}

bool txstart_for_client(struct txstart *t, const struct jwt_identity *id, const struct role_config *role,
                        const char *application_name)
{
    struct txstart_setting set[TXSTART_SETTINGS_MAX];
    char num[TXSTART_SETTINGS_MAX][32];
    size_t n = 0, nclaims = 0;
    /* Claims first: they are the ones the reset Query clears. */
    for (int claims = 1; claims >= 0; claims--) {
        for (size_t i = 0; i < managed_settings_count && n < TXSTART_SETTINGS_MAX - 1; i++) {
            const struct managed_setting *m = &managed_settings[i];
            if (managed_is_claim(m->source) != claims)
                continue;
            const char *v = managed_value(m->source, id, role, num[n], sizeof num[n]);
            if (v)
                set[n++] = (struct txstart_setting){m->name, v, false};
        }
        if (claims)
            nclaims = n;
    }
    set[n++] = (struct txstart_setting){"application_name", application_name, true};
    return txstart_build(t, set, n, nclaims);
}
