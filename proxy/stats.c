/* Per-pool and per-tenant counters (see stats.h). The tenant table is bounded: rows are made at a
 * tenant's first login and kept until exit, so a client may hold a pointer to its row; the
 * lookup is a scan at login only. No I/O, no calls into the rest of proxy/. */
#include "proxy/stats.h"

#include <stdlib.h>
#include <string.h>

static struct stats_tenant *rows[STATS_TENANTS_MAX];
static size_t nrows;
static struct stats_tenant other = {.name = STATS_OTHER_TENANT};
static bool other_used;

struct stats_tenant *stats_tenant_for(const char *tenant)
{
    for (size_t i = 0; i < nrows; i++)
        if (strcmp(rows[i]->name, tenant) == 0)
            return rows[i];
    struct stats_tenant *t = nrows < STATS_TENANTS_MAX ? calloc(1, sizeof *t) : NULL;
    if (!t || strlen(tenant) >= sizeof t->name) {
        free(t);
        other_used = true;
        return &other;
    }
    strcpy(t->name, tenant);
    rows[nrows++] = t;
    return t;
}

const struct stats_tenant *stats_tenant_at(size_t i)
{
    if (i < nrows)
        return rows[i];
    return i == nrows && other_used ? &other : NULL;
}

void stats_tenants_free(void)
{
    for (size_t i = 0; i < nrows; i++)
        free(rows[i]);
    nrows = 0;
    other_used = false;
    other.clients = 0;
    other.c = (struct stats_counters){0};
}

static uint64_t elapsed_us(double from, double now)
{
    return from > 0 && now > from ? (uint64_t)((now - from) * 1e6) : 0;
}

/* Adds to both rows the session counts into. */
#define BOTH(st, field, n)                                                                                        \
    do {                                                                                                          \
        if ((st)->pool)                                                                                           \
            (st)->pool->field += (n);                                                                             \
        if ((st)->tenant)                                                                                         \
            (st)->tenant->c.field += (n);                                                                         \
    } while (0)

static void add_bytes(struct stats_session *st, uint64_t bytes_in, uint64_t bytes_out)
{
    BOTH(st, bytes_received, bytes_in - st->bytes_in_seen);
    BOTH(st, bytes_sent, bytes_out - st->bytes_out_seen);
    st->bytes_in_seen = bytes_in;
    st->bytes_out_seen = bytes_out;
}

void stats_session_login(struct stats_session *st, struct stats_counters *pool, const char *tenant)
{
    st->pool = pool;
    st->tenant = stats_tenant_for(tenant);
    st->tenant->clients++;
}

void stats_session_logout(struct stats_session *st, uint64_t bytes_in, uint64_t bytes_out)
{
    if (!st->tenant)
        return;
    add_bytes(st, bytes_in, bytes_out);
    st->tenant->clients--;
    st->tenant = NULL;
    st->pool = NULL;
}

void stats_ready(struct stats_session *st, char tx_status, double now, uint64_t bytes_in, uint64_t bytes_out)
{
    BOTH(st, query_count, 1);
    BOTH(st, query_time_us, elapsed_us(st->query_start, now));
    st->query_start = 0;
    if (tx_status == 'I') {
        BOTH(st, xact_count, 1);
        BOTH(st, xact_time_us, elapsed_us(st->xact_start, now));
        st->xact_start = 0;
    }
    add_bytes(st, bytes_in, bytes_out);
}

void stats_wait_begin(struct stats_session *st, double now)
{
    st->wait_start = now;
}

void stats_wait_end(struct stats_session *st, double now)
{
    uint64_t us = elapsed_us(st->wait_start, now);
    st->wait_start = 0;
    BOTH(st, wait_time_us, us);
    if (st->pool && us > st->pool->max_wait_us)
        st->pool->max_wait_us = us;
    if (st->tenant && us > st->tenant->c.max_wait_us)
        st->tenant->c.max_wait_us = us;
}

void stats_guard_refusal(struct stats_session *st)
{
    BOTH(st, guard_refusals, 1);
}

void stats_enforce_refusal(struct stats_session *st)
{
    BOTH(st, enforce_refusals, 1);
}

void stats_limit_end(struct stats_session *st)
{
    BOTH(st, limit_ends, 1);
}

void stats_txstart(struct stats_session *st, bool switched, bool held)
{
    if (switched)
        BOTH(st, claim_switches, 1);
    if (held)
        BOTH(st, claims_held, 1);
}

void stats_add(struct stats_counters *a, const struct stats_counters *b)
{
    a->xact_count += b->xact_count;
    a->query_count += b->query_count;
    a->bytes_received += b->bytes_received;
    a->bytes_sent += b->bytes_sent;
    a->xact_time_us += b->xact_time_us;
    a->query_time_us += b->query_time_us;
    a->wait_time_us += b->wait_time_us;
    if (b->max_wait_us > a->max_wait_us)
        a->max_wait_us = b->max_wait_us;
    a->guard_refusals += b->guard_refusals;
    a->enforce_refusals += b->enforce_refusals;
    a->limit_ends += b->limit_ends;
    a->claim_switches += b->claim_switches;
    a->claims_held += b->claims_held;
}
