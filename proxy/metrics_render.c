/* What /metrics reports: counters and per-role histograms kept here, bumped from the relay and the
 * login path with no allocation and no lookup (a client holds its role's row), and gauges read
 * from the pools and the client list when scraped. Label values are bounded: databases and roles
 * come from the config, the kinds and reasons from fixed tables. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/cache.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/stats.h"
#include "proxy/version.h"
#include "proxy/watch.h"

/* Upper bounds in seconds: from a warm pool's sub-millisecond hand-over to a query_wait_timeout. */
static const double bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

struct histogram {
    uint64_t buckets[NBOUNDS]; /* not cumulative: the renderer adds them up */
    uint64_t count;
    double sum;
};

struct metrics_role {
    char name[JWT_CLAIM_MAX + 1];
    struct histogram wait, link;
};

static struct metrics_role roles[METRICS_ROLES + 1]; /* the last is "other" */
static size_t nroles;

#define NKINDS (REFUSE_FUNCTION_CALL + 1)
static uint64_t refusals[NKINDS];

#define MAX_REASONS 24
static struct {
    const char *reason;
    uint64_t n;
} login_refusals[MAX_REASONS];

struct metrics_role *metrics_role(const char *role)
{
    for (size_t i = 0; i < nroles; i++)
        if (strcmp(roles[i].name, role) == 0)
            return &roles[i];
    if (nroles < METRICS_ROLES) {
        snprintf(roles[nroles].name, sizeof roles[nroles].name, "%s", role);
        return &roles[nroles++];
    }
    struct metrics_role *other = &roles[METRICS_ROLES];
    if (!other->name[0])
        snprintf(other->name, sizeof other->name, "%s", "other");
    return other;
}

static void observe(struct histogram *h, double v)
{
    size_t i = 0;
    while (i < NBOUNDS && v > bounds[i])
        i++;
    if (i < NBOUNDS)
        h->buckets[i]++;
    h->count++;
    h->sum += v;
}

void metrics_wait_observed(struct metrics_role *r, double seconds)
{
    if (r)
        observe(&r->wait, seconds);
}

void metrics_link_observed(struct metrics_role *r, double seconds)
{
    if (r)
        observe(&r->link, seconds);
}

void metrics_refused(enum refusal why)
{
    if ((size_t)why < NKINDS)
        refusals[why]++;
}

void metrics_login_refused(const char *reason)
{
    for (size_t i = 0; i < MAX_REASONS; i++) {
        if (login_refusals[i].reason == NULL)
            login_refusals[i].reason = reason;
        if (login_refusals[i].reason == reason || strcmp(login_refusals[i].reason, reason) == 0) {
            login_refusals[i].n++;
            return;
        }
    }
}

/* A label value as the exposition format wants it: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f), fputc(*v, f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void pool_labels(FILE *f, const struct pool *p)
{
    fputs("database=\"", f);
    put_label(f, p->database);
    fputs("\",user=\"", f);
    put_label(f, p->server_user);
    fputc('"', f);
}

static void render_pools(FILE *f)
{
    const struct pool *p;
    header(f, "pgmesh_pool_size", "gauge",
           "Server connections a pool may open (default_pool_size or the database's).");
    TAILQ_FOREACH(p, &rt.pools, link) {
        fputs("pgmesh_pool_size{", f);
        pool_labels(f, p);
        fprintf(f, "} %d\n", p->size);
    }
    header(f, "pgmesh_pool_servers", "gauge", "Server connections by state.");
    TAILQ_FOREACH(p, &rt.pools, link) {
        const struct {
            const char *state;
            const struct server_list *l;
        } states[] = {{"connecting", &p->connecting},
                      {"idle", &p->idle},
                      {"active", &p->linked},
                      {"resetting", &p->resetting}};
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
            fputs("pgmesh_pool_servers{", f);
            pool_labels(f, p);
            fprintf(f, ",state=\"%s\"} %zu\n", states[i].state, pool_count_servers(states[i].l));
        }
    }
    header(f, "pgmesh_pool_waiting_clients", "gauge", "Clients waiting for a server connection.");
    TAILQ_FOREACH(p, &rt.pools, link) {
        fputs("pgmesh_pool_waiting_clients{", f);
        pool_labels(f, p);
        fprintf(f, "} %d\n", p->nwaiting);
    }
    header(f, "pgmesh_pool_max_wait_seconds", "gauge", "How long the longest-waiting client has waited.");
    ev_tstamp now = ev_now(rt.loop);
    TAILQ_FOREACH(p, &rt.pools, link) {
        const struct client *first = TAILQ_FIRST(&p->waiting);
        fputs("pgmesh_pool_max_wait_seconds{", f);
        pool_labels(f, p);
        fprintf(f, "} %.6f\n", first ? now - first->st.wait_start : 0.0);
    }
    header(f, "pgmesh_pool_server_host", "gauge",
           "Always 1; the host and port the pool's latest server connection reached in labels.");
    TAILQ_FOREACH(p, &rt.pools, link) {
        if (p->current_since <= 0)
            continue;
        fputs("pgmesh_pool_server_host{", f);
        pool_labels(f, p);
        fputs(",host=\"", f);
        put_label(f, p->current_host);
        fputs("\",port=\"", f);
        put_label(f, p->current_port);
        fputs("\"} 1\n", f);
    }
    header(f, "pgmesh_pool_login_failing", "gauge", "1 while the pool's last server login failed.");
    TAILQ_FOREACH(p, &rt.pools, link) {
        fputs("pgmesh_pool_login_failing{", f);
        pool_labels(f, p);
        fprintf(f, "} %d\n", p->login_failing ? 1 : 0);
    }
}

static void render_clients(FILE *f)
{
    int login = 0, idle = 0, waiting = 0, active = 0, closing = 0;
    const struct client *c;
    TAILQ_FOREACH(c, &rt.clients, link) {
        switch (c->state) {
        case CLIENT_STARTUP:
        case CLIENT_TLS_HANDSHAKE:
        case CLIENT_AUTH:
            login++;
            break;
        case CLIENT_IDLE:
            idle++;
            break;
        case CLIENT_WAIT_SERVER:
            waiting++;
            break;
        case CLIENT_LINKED:
            active++;
            break;
        case CLIENT_CLOSING:
            closing++;
            break;
        }
    }
    header(f, "pgmesh_clients", "gauge", "Client connections by state.");
    fprintf(f,
            "pgmesh_clients{state=\"login\"} %d\npgmesh_clients{state=\"idle\"} %d\n"
            "pgmesh_clients{state=\"waiting\"} %d\npgmesh_clients{state=\"active\"} %d\n"
            "pgmesh_clients{state=\"closing\"} %d\n",
            login, idle, waiting, active, closing);
}

static void render_histogram(FILE *f, const char *name, const char *role, const struct histogram *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < NBOUNDS; i++) {
        cum += h->buckets[i];
        fprintf(f, "%s_bucket{role=\"", name);
        put_label(f, role);
        fprintf(f, "\",le=\"%g\"} %llu\n", bounds[i], (unsigned long long)cum);
    }
    fprintf(f, "%s_bucket{role=\"", name);
    put_label(f, role);
    fprintf(f, "\",le=\"+Inf\"} %llu\n%s_sum{role=\"", (unsigned long long)h->count, name);
    put_label(f, role);
    fprintf(f, "\"} %.6f\n%s_count{role=\"", h->sum, name);
    put_label(f, role);
    fprintf(f, "\"} %llu\n", (unsigned long long)h->count);
}

static void render_roles(FILE *f)
{
    size_t n = nroles + (roles[METRICS_ROLES].name[0] ? 1 : 0);
    header(f, "pgmesh_wait_seconds", "histogram",
           "Time a client waited for a server connection, per transaction (0 when one was idle), by role.");
    for (size_t i = 0; i < n; i++) {
        const struct metrics_role *r = i < nroles ? &roles[i] : &roles[METRICS_ROLES];
        render_histogram(f, "pgmesh_wait_seconds", r->name, &r->wait);
    }
    header(f, "pgmesh_transaction_seconds", "histogram",
           "Time a client held a server connection: a transaction in transaction pooling, a session in "
           "session pooling, by role.");
    for (size_t i = 0; i < n; i++) {
        const struct metrics_role *r = i < nroles ? &roles[i] : &roles[METRICS_ROLES];
        render_histogram(f, "pgmesh_transaction_seconds", r->name, &r->link);
    }
}

/* One tenant's row of every per-tenant series, in the order the headers come. */
struct tenant_row {
    const char *name;
    int clients;
    struct stats_counters c;
};

static void tenant_series(FILE *f, const char *name, const char *type, const char *help,
                          const struct tenant_row *rows, size_t n, double (*value)(const struct tenant_row *))
{
    header(f, name, type, help);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s{tenant=\"", name);
        put_label(f, rows[i].name);
        fprintf(f, "\"} %.15g\n", value(&rows[i]));
    }
}

static double t_clients(const struct tenant_row *r)
{
    return r->clients;
}
static double t_xacts(const struct tenant_row *r)
{
    return (double)r->c.xact_count;
}
static double t_queries(const struct tenant_row *r)
{
    return (double)r->c.query_count;
}
static double t_received(const struct tenant_row *r)
{
    return (double)r->c.bytes_received;
}
static double t_sent(const struct tenant_row *r)
{
    return (double)r->c.bytes_sent;
}
static double t_wait(const struct tenant_row *r)
{
    return (double)r->c.wait_time_us / 1e6;
}
static double t_max_wait(const struct tenant_row *r)
{
    return (double)r->c.max_wait_us / 1e6;
}
static double t_guard(const struct tenant_row *r)
{
    return (double)r->c.guard_refusals;
}
static double t_enforce(const struct tenant_row *r)
{
    return (double)r->c.enforce_refusals;
}
static double t_limit(const struct tenant_row *r)
{
    return (double)r->c.limit_ends;
}
static double t_switches(const struct tenant_row *r)
{
    return (double)r->c.claim_switches;
}
static double t_held(const struct tenant_row *r)
{
    return (double)r->c.claims_held;
}

/* Per tenant, from the admin console's counters (stats.h): the first METRICS_TENANTS tenants to
 * log in get their own label value, the rest are summed into tenant="other", so a deployment with
 * many tenants keeps a bounded number of series. */
#define METRICS_TENANTS 200
static void render_tenants(FILE *f)
{
    static struct tenant_row rows[METRICS_TENANTS + 1];
    size_t n = 0;
    struct tenant_row other = {.name = STATS_OTHER_TENANT};
    bool any_other = false;
    const struct stats_tenant *t;
    for (size_t i = 0; (t = stats_tenant_at(i)) != NULL; i++) {
        if (n < METRICS_TENANTS && strcmp(t->name, STATS_OTHER_TENANT) != 0) {
            rows[n++] = (struct tenant_row){.name = t->name, .clients = t->clients, .c = t->c};
            continue;
        }
        other.clients += t->clients;
        stats_add(&other.c, &t->c);
        any_other = true;
    }
    if (any_other)
        rows[n++] = other;
    tenant_series(f, "pgmesh_tenant_clients", "gauge", "Logged-in clients of a tenant.", rows, n, t_clients);
    tenant_series(f, "pgmesh_tenant_transactions_total", "counter", "Transactions a tenant's clients ended.", rows,
                  n, t_xacts);
    tenant_series(f, "pgmesh_tenant_queries_total", "counter", "Queries (ReadyForQuery) of a tenant's clients.",
                  rows, n, t_queries);
    tenant_series(f, "pgmesh_tenant_received_bytes_total", "counter", "Bytes received from a tenant's clients.",
                  rows, n, t_received);
    tenant_series(f, "pgmesh_tenant_sent_bytes_total", "counter", "Bytes sent to a tenant's clients.", rows, n,
                  t_sent);
    tenant_series(f, "pgmesh_tenant_wait_seconds_total", "counter",
                  "Time a tenant's clients waited for a server connection.", rows, n, t_wait);
    tenant_series(f, "pgmesh_tenant_max_wait_seconds", "gauge",
                  "The longest wait for a server connection of a tenant's clients since start.", rows, n,
                  t_max_wait);
    tenant_series(
        f, "pgmesh_tenant_guard_refusals_total", "counter",
        "Statements of a tenant's clients the guard refused (managed settings, session-only statements).", rows, n,
        t_guard);
    tenant_series(f, "pgmesh_tenant_enforcement_refusals_total", "counter",
                  "Transaction starts of a tenant's clients the server's enforcement refused.", rows, n,
                  t_enforce);
    tenant_series(f, "pgmesh_tenant_limit_ended_transactions_total", "counter",
                  "A tenant's transactions pgmesh ended for a role limit (idle in transaction, max age, a "
                  "statement_timeout cancel that did not act).",
                  rows, n, t_limit);
    tenant_series(f, "pgmesh_tenant_claim_switches_total", "counter",
                  "A tenant's transactions that began on a server connection another tenant or role used last "
                  "(reset, then the claims set anew).",
                  rows, n, t_switches);
    tenant_series(f, "pgmesh_tenant_claims_held_transactions_total", "counter",
                  "A tenant's transactions that began on a server connection already holding their claims and "
                  "limits, with nothing sent first (server_enforcement: the pgmesh extension).",
                  rows, n, t_held);
}

static void render_counters(FILE *f)
{
    header(f, "pgmesh_refusals_total", "counter", "Client messages pgmesh refused, by kind.");
    for (size_t i = 1; i < NKINDS; i++)
        fprintf(f, "pgmesh_refusals_total{kind=\"%s\"} %llu\n", refusal_name((enum refusal)i),
                (unsigned long long)refusals[i]);
    header(f, "pgmesh_login_refusals_total", "counter", "Logins refused, by reason.");
    for (size_t i = 0; i < MAX_REASONS && login_refusals[i].reason; i++)
        fprintf(f, "pgmesh_login_refusals_total{reason=\"%s\"} %llu\n", login_refusals[i].reason,
                (unsigned long long)login_refusals[i].n);
    uint64_t hits, misses;
    jwt_cache_counts(rt.token_cache, &hits, &misses);
    header(
        f, "pgmesh_token_cache_lookups_total", "counter",
        "Token verifications answered from the verified-token cache (hit) or by checking the signature (miss).");
    fprintf(f, "pgmesh_token_cache_lookups_total{result=\"hit\"} %llu\n", (unsigned long long)hits);
    fprintf(f, "pgmesh_token_cache_lookups_total{result=\"miss\"} %llu\n", (unsigned long long)misses);
    header(f, "pgmesh_token_cache_entries", "gauge", "Verified tokens the cache holds.");
    fprintf(f, "pgmesh_token_cache_entries %zu\n", jwt_cache_count(rt.token_cache));
}

static void cluster_labels(FILE *f, const char *database, const char *host, int port)
{
    fputs("database=\"", f);
    put_label(f, database);
    fputs("\",host=\"", f);
    put_label(f, host);
    fprintf(f, "\",port=\"%d\"", port);
}

/* The watcher's latest readings (watch.h): slots and their retained WAL, collations. */
static void render_watch(FILE *f)
{
    const struct watch_slot *slots;
    size_t n = watch_slots(&slots);
    header(f, "pgmesh_slot_retained_wal_bytes", "gauge",
           "WAL a replication slot keeps back (pg_wal_lsn_diff against restart_lsn); slots reserving none are "
           "left out.");
    for (size_t i = 0; i < n; i++) {
        if (slots[i].retained_bytes < 0)
            continue;
        fputs("pgmesh_slot_retained_wal_bytes{", f);
        cluster_labels(f, slots[i].database, slots[i].host, slots[i].port);
        fputs(",slot=\"", f);
        put_label(f, slots[i].slot_name);
        fputs("\",slot_type=\"", f);
        put_label(f, slots[i].slot_type);
        fprintf(f, "\",active=\"%s\"} %lld\n", slots[i].active ? "true" : "false",
                (long long)slots[i].retained_bytes);
    }
    header(f, "pgmesh_slots_over_warn", "gauge", "Replication slots whose retained WAL is above slot_wal_warn.");
    size_t over = 0;
    for (size_t i = 0; i < n; i++)
        over += slots[i].over_warn;
    fprintf(f, "pgmesh_slots_over_warn %zu\n", over);

    const struct watch_collation *colls;
    n = watch_collations(&colls);
    header(f, "pgmesh_database_collation", "gauge",
           "1 per [databases] entry, its database's collation in labels (empty until read).");
    for (size_t i = 0; i < n; i++) {
        fputs("pgmesh_database_collation{", f);
        cluster_labels(f, colls[i].database, colls[i].host, colls[i].port);
        fputs(",datcollate=\"", f);
        put_label(f, colls[i].datcollate);
        fputs("\",datctype=\"", f);
        put_label(f, colls[i].datctype);
        fputs("\",provider=\"", f);
        put_label(f, colls[i].provider);
        fputs("\"} 1\n", f);
    }
    header(f, "pgmesh_collation_mismatch", "gauge",
           "1 when the database's collation differs from another [databases] entry's (postgres_fdw pushdown "
           "across them can return wrong results).");
    for (size_t i = 0; i < n; i++) {
        fputs("pgmesh_collation_mismatch{", f);
        cluster_labels(f, colls[i].database, colls[i].host, colls[i].port);
        fprintf(f, "} %d\n", colls[i].mismatch ? 1 : 0);
    }

    const struct watch_stat *st;
    n = watch_stats(&st);
    header(f, "pgmesh_watch_polls_total", "counter", "The watcher's connections to a cluster, by outcome.");
    for (size_t i = 0; i < n; i++) {
        fputs("pgmesh_watch_polls_total{", f);
        cluster_labels(f, st[i].database, st[i].host, st[i].port);
        fprintf(f, ",result=\"ok\"} %llu\npgmesh_watch_polls_total{", (unsigned long long)st[i].polls_ok);
        cluster_labels(f, st[i].database, st[i].host, st[i].port);
        fprintf(f, ",result=\"failed\"} %llu\n", (unsigned long long)st[i].polls_failed);
    }
}

char *metrics_render(size_t *len)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    if (!f)
        return NULL;
    header(f, "pgmesh_info", "gauge", "Always 1; the version in a label.");
    fprintf(f, "pgmesh_info{version=\"%s\"} 1\n", PGMESH_VERSION);
    header(f, "pgmesh_shutting_down", "gauge", "1 after SIGTERM or SIGINT, while clients finish.");
    fprintf(f, "pgmesh_shutting_down %d\n", rt.shutting_down ? 1 : 0);
    render_clients(f);
    render_pools(f);
    render_roles(f);
    render_tenants(f);
    render_counters(f);
    render_watch(f);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    *len = n;
    return out;
}
