/* The admin console's SHOW commands: one table entry (name, columns) and one function filling the
 * rows each. Column names follow PgBouncer 1.18's where it has the column, with pgmesh's own
 * (tenant, role, ...) after them. Numbers are int8, so drivers hand them back as integers; times
 * are text in UTC. Reads rt and the stats; changes nothing. */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "proxy/admin.h"
#include "proxy/admin_int.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/config_keys.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/stats.h"
#include "proxy/version.h"
#include "proxy/watch.h"
#include "proxy/watchrule.h"

#define INT8 BE_TYPE_INT8
#define TEXT BE_TYPE_TEXT

/* ---- the row builder ---- */

static char *next_buf(struct admin_rows *r)
{
    return r->n < ADMIN_COLS_MAX ? r->bufs[r->n] : NULL;
}

void rows_text(struct admin_rows *r, const char *v)
{
    if (r->n < ADMIN_COLS_MAX)
        r->vals[r->n++] = v;
}

void rows_textf(struct admin_rows *r, const char *fmt, ...)
{
    char *b = next_buf(r);
    if (!b)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, ADMIN_VALUE_MAX, fmt, ap);
    va_end(ap);
    rows_text(r, b);
}

void rows_int(struct admin_rows *r, int64_t v)
{
    rows_textf(r, "%lld", (long long)v);
}

void rows_uint(struct admin_rows *r, uint64_t v)
{
    rows_textf(r, "%llu", (unsigned long long)v);
}

void rows_time(struct admin_rows *r, double t)
{
    char *b = next_buf(r);
    if (!b)
        return;
    if (t <= 0) {
        rows_text(r, NULL);
        return;
    }
    time_t secs = (time_t)t;
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(b, ADMIN_VALUE_MAX, "%Y-%m-%d %H:%M:%S UTC", &tm);
    rows_text(r, b);
}

void rows_end(struct admin_rows *r)
{
    /* A column left out would shift the others: that is a bug in a show function. */
    if (r->n != r->ncols) {
        if (r->capture)
            r->capture->failed = true;
        else
            r->w->failed = true;
    } else if (r->capture) {
        rows_capture_add(r->capture, r->vals, r->n);
    } else {
        be_write_data_row(r->w, r->cols, r->formats, r->vals, r->n);
    }
    r->n = 0;
    r->count++;
}

static uint64_t seconds_part(double since, double now)
{
    return since > 0 && now > since ? (uint64_t)(now - since) : 0;
}

static uint64_t micros_part(double since, double now)
{
    if (since <= 0 || now <= since)
        return 0;
    double d = now - since;
    return (uint64_t)((d - (double)(uint64_t)d) * 1e6);
}

/* ---- SHOW POOLS ---- */

static const struct be_column pools_cols[] = {
    {"database", TEXT},   {"user", TEXT},      {"cl_active", INT8}, {"cl_waiting", INT8}, {"sv_active", INT8},
    {"sv_idle", INT8},    {"sv_used", INT8},   {"sv_tested", INT8}, {"sv_login", INT8},   {"maxwait", INT8},
    {"maxwait_us", INT8}, {"pool_mode", TEXT}, {"pool_size", INT8}, {"paused", INT8},
};

static void pools_rows(struct admin_rows *r)
{
    double now = ev_now(rt.loop);
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        int64_t active = 0;
        const struct client *c;
        TAILQ_FOREACH(c, &rt.clients, link)
            active += c->pool == p && (c->state == CLIENT_IDLE || c->state == CLIENT_LINKED);
        const struct client *first = pool_first_waiter(p);
        double since = first ? first->st.wait_start : 0;
        rows_text(r, p->database);
        rows_text(r, p->server_user);
        rows_int(r, active);
        rows_int(r, p->nwaiting);
        rows_int(r, pool_count_servers(&p->linked));
        rows_int(r, pool_count_servers(&p->idle));
        rows_int(r, pool_count_servers(&p->resetting));
        rows_int(r, 0);
        rows_int(r, pool_count_servers(&p->connecting));
        rows_uint(r, seconds_part(since, now));
        rows_uint(r, micros_part(since, now));
        rows_text(r, rt.cfg->pool_mode == POOL_SESSION ? "session" : "transaction");
        rows_int(r, p->size);
        rows_int(r, p->paused);
        rows_end(r);
    }
}

/* ---- SHOW CLIENTS ---- */

static const struct be_column clients_cols[] = {
    {"type", TEXT},         {"user", TEXT},         {"database", TEXT},   {"state", TEXT},
    {"addr", TEXT},         {"port", INT8},         {"local_addr", TEXT}, {"local_port", INT8},
    {"connect_time", TEXT}, {"request_time", TEXT}, {"wait", INT8},       {"wait_us", INT8},
    {"id", INT8},           {"link", INT8},         {"tls", TEXT},        {"application_name", TEXT},
    {"tenant", TEXT},       {"role", TEXT},
};

static const char *client_state_name(const struct client *c)
{
    switch (c->state) {
    case CLIENT_STARTUP:
    case CLIENT_TLS_HANDSHAKE:
    case CLIENT_AUTH:
        return "login";
    case CLIENT_IDLE:
        return "idle";
    case CLIENT_WAIT_SERVER:
        return "waiting";
    case CLIENT_LINKED:
        return "active";
    case CLIENT_CLOSING:
        break;
    }
    return "closing";
}

/* "host:port" as listen.c wrote it (an IPv6 host has colons of its own), or "unix". */
static void peer_columns(struct admin_rows *r, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon) {
        rows_text(r, addr);
        rows_int(r, 0);
        return;
    }
    rows_textf(r, "%.*s", (int)(colon - addr), addr);
    rows_textf(r, "%s", colon + 1);
}

/* The local end of a socket: address and port, or "unix" and pgmesh's port. */
static void local_columns(struct admin_rows *r, int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        } else if (sa.ss_family == AF_UNIX) {
            snprintf(host, sizeof host, "unix");
            port = rt.cfg->listen_port;
        }
    }
    rows_textf(r, "%s", host);
    rows_int(r, port);
}

static void clients_rows(struct admin_rows *r)
{
    double now = ev_now(rt.loop);
    const struct client *c;
    TAILQ_FOREACH(c, &rt.clients, link) {
        if (c->state == CLIENT_CLOSING)
            continue;
        double since = c->state == CLIENT_WAIT_SERVER ? c->st.wait_start : 0;
        rows_text(r, "C");
        rows_text(r, c->ident.role); /* the token's role, or a peer login's OS user */
        rows_text(r, c->database ? c->database : "");
        rows_text(r, client_state_name(c));
        peer_columns(r, c->addr);
        local_columns(r, c->conn.fd);
        rows_time(r, c->connect_time);
        rows_time(r, c->st.request_time);
        rows_uint(r, seconds_part(since, now));
        rows_uint(r, micros_part(since, now));
        rows_uint(r, c->id);
        if (c->server)
            rows_uint(r, c->server->id);
        else
            rows_text(r, NULL);
        rows_text(r, c->conn.ssl ? "yes" : "no");
        rows_text(r, c->application_name ? c->application_name : "");
        rows_text(r, c->ident.tenant);
        rows_text(r, c->ident.role);
        rows_end(r);
    }
}

/* ---- SHOW SERVERS ---- */

static const struct be_column servers_cols[] = {
    {"type", TEXT}, {"user", TEXT},       {"database", TEXT},   {"state", TEXT},        {"addr", TEXT},
    {"port", INT8}, {"local_addr", TEXT}, {"local_port", INT8}, {"connect_time", TEXT}, {"request_time", TEXT},
    {"id", INT8},   {"link", INT8},       {"remote_pid", INT8}, {"tls", TEXT},          {"tenant", TEXT},
    {"role", TEXT}, {"enforced", INT8},
};

static const char *server_state_name(enum server_state st)
{
    static const char *const names[] = {
        [SERVER_CONNECTING] = "login", [SERVER_IDLE] = "idle",       [SERVER_LINKED] = "active",
        [SERVER_RESETTING] = "used",   [SERVER_CLOSING] = "closing",
    };
    return names[st];
}

static void server_row(struct admin_rows *r, const struct server *s)
{
    bool up = s->pg && s->state != SERVER_CONNECTING;
    rows_text(r, "S");
    rows_text(r, s->pool->server_user);
    rows_text(r, s->pool->database);
    rows_text(r, server_state_name(s->state));
    rows_text(r, up && PQhost(s->pg) ? PQhost(s->pg) : "");
    rows_textf(r, "%s", up && PQport(s->pg) ? PQport(s->pg) : "0");
    local_columns(r, up ? s->conn.fd : -1);
    rows_time(r, s->connect_time);
    rows_time(r, s->state == SERVER_IDLE ? s->idle_since : 0);
    rows_uint(r, s->id);
    if (s->client)
        rows_uint(r, s->client->id);
    else
        rows_text(r, NULL);
    rows_int(r, s->backend_pid);
    rows_text(r, up && PQsslInUse(s->pg) ? "yes" : "no");
    rows_text(r, s->relay.claims_tenant);
    rows_text(r, s->relay.claims_role);
    rows_int(r, s->relay.enforced);
    rows_end(r);
}

static void servers_rows(struct admin_rows *r)
{
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        const struct server_list *lists[] = {&p->linked, &p->idle, &p->resetting, &p->connecting};
        for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
            const struct server *s;
            TAILQ_FOREACH(s, lists[i], link)
                server_row(r, s);
        }
    }
}

/* ---- SHOW STATS ---- */

static const struct be_column stats_cols[] = {
    {"database", TEXT},
    {"total_xact_count", INT8},
    {"total_query_count", INT8},
    {"total_received", INT8},
    {"total_sent", INT8},
    {"total_xact_time", INT8},
    {"total_query_time", INT8},
    {"total_wait_time", INT8},
    {"avg_xact_count", INT8},
    {"avg_query_count", INT8},
    {"avg_recv", INT8},
    {"avg_sent", INT8},
    {"avg_xact_time", INT8},
    {"avg_query_time", INT8},
    {"avg_wait_time", INT8},
    {"guard_refusals", INT8},
    {"enforcement_refusals", INT8},
    {"limit_ended_xacts", INT8},
    {"claim_switches", INT8},
    {"claims_held_xacts", INT8},
};

static uint64_t per(uint64_t total, uint64_t n)
{
    return n ? total / n : 0;
}

static void stats_row(struct admin_rows *r, const char *db, const struct stats_counters *t, double uptime_s)
{
    uint64_t secs = uptime_s >= 1 ? (uint64_t)uptime_s : 1;
    rows_text(r, db);
    rows_uint(r, t->xact_count);
    rows_uint(r, t->query_count);
    rows_uint(r, t->bytes_received);
    rows_uint(r, t->bytes_sent);
    rows_uint(r, t->xact_time_us);
    rows_uint(r, t->query_time_us);
    rows_uint(r, t->wait_time_us);
    /* Counts and bytes per second since start; times per transaction or query. */
    rows_uint(r, t->xact_count / secs);
    rows_uint(r, t->query_count / secs);
    rows_uint(r, t->bytes_received / secs);
    rows_uint(r, t->bytes_sent / secs);
    rows_uint(r, per(t->xact_time_us, t->xact_count));
    rows_uint(r, per(t->query_time_us, t->query_count));
    rows_uint(r, per(t->wait_time_us, t->xact_count));
    rows_uint(r, t->guard_refusals);
    rows_uint(r, t->enforce_refusals);
    rows_uint(r, t->limit_ends);
    rows_uint(r, t->claim_switches);
    rows_uint(r, t->claims_held);
    rows_end(r);
}

static void stats_rows(struct admin_rows *r)
{
    double uptime = ev_now(rt.loop) - rt.started_at;
    for (size_t i = 0; i < rt.cfg->ndatabases; i++) {
        const char *db = rt.cfg->databases[i].name;
        struct stats_counters t = {0};
        const struct pool *p;
        TAILQ_FOREACH(p, &rt.pools, link) {
            if (strcmp(p->database, db) == 0)
                stats_add(&t, &p->stats);
        }
        stats_row(r, db, &t, uptime);
    }
}

/* ---- SHOW TENANTS ---- */

static const struct be_column tenants_cols[] = {
    {"tenant", TEXT},
    {"clients", INT8},
    {"total_xact_count", INT8},
    {"total_query_count", INT8},
    {"total_received", INT8},
    {"total_sent", INT8},
    {"total_wait_time", INT8},
    {"max_wait_time", INT8},
    {"guard_refusals", INT8},
    {"enforcement_refusals", INT8},
    {"limit_ended_xacts", INT8},
    {"claim_switches", INT8},
    {"claims_held_xacts", INT8},
};

static void tenants_rows(struct admin_rows *r)
{
    const struct stats_tenant *t;
    for (size_t i = 0; (t = stats_tenant_at(i)) != NULL; i++) {
        rows_text(r, t->name);
        rows_int(r, t->clients);
        rows_uint(r, t->c.xact_count);
        rows_uint(r, t->c.query_count);
        rows_uint(r, t->c.bytes_received);
        rows_uint(r, t->c.bytes_sent);
        rows_uint(r, t->c.wait_time_us);
        rows_uint(r, t->c.max_wait_us);
        rows_uint(r, t->c.guard_refusals);
        rows_uint(r, t->c.enforce_refusals);
        rows_uint(r, t->c.limit_ends);
        rows_uint(r, t->c.claim_switches);
        rows_uint(r, t->c.claims_held);
        rows_end(r);
    }
}

/* ---- SHOW DATABASES ---- */

static const struct be_column databases_cols[] = {
    {"name", TEXT},
    {"host", TEXT},
    {"port", INT8},
    {"database", TEXT},
    {"force_user", TEXT},
    {"pool_size", INT8},
    {"pool_mode", TEXT},
    {"max_connections", INT8},
    {"current_connections", INT8},
    {"paused", INT8},
    {"disabled", INT8},
    {"current_host", TEXT}, /* which host of a multi-host conninfo serves now (pool_current_for) */
    {"current_port", INT8},
};

/* A conninfo keyword's value, or fallback. */
static const char *conninfo_value(const PQconninfoOption *opts, const char *key, const char *fallback)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0 && o->val && o->val[0])
            return o->val;
    return fallback;
}

static void databases_rows(struct admin_rows *r)
{
    for (size_t i = 0; i < rt.cfg->ndatabases; i++) {
        const struct db_config *db = &rt.cfg->databases[i];
        PQconninfoOption *opts = PQconninfoParse(db->conninfo, NULL);
        int64_t current = 0, paused = rt.paused_all;
        const struct pool *p;
        TAILQ_FOREACH(p, &rt.pools, link) {
            if (strcmp(p->database, db->name) == 0) {
                current += p->nservers;
                paused |= p->paused;
            }
        }
        const char *port = conninfo_value(opts, "port", "5432");
        rows_text(r, db->name);
        rows_textf(r, "%s", conninfo_value(opts, "host", ""));
        /* A multi-host conninfo's "5432,5433" is no int8. */
        if (port[strspn(port, "0123456789")] == '\0')
            rows_textf(r, "%s", port);
        else
            rows_text(r, NULL);
        rows_textf(r, "%s", conninfo_value(opts, "dbname", db->name));
        PQconninfoFree(opts);
        rows_text(r, NULL);
        rows_int(r, rt.cfg->default_pool_size);
        rows_text(r, rt.cfg->pool_mode == POOL_SESSION ? "session" : "transaction");
        rows_int(r, 0);
        rows_int(r, current);
        rows_int(r, paused);
        rows_int(r, 0);
        const struct pool *cur = pool_current_for(db->name);
        rows_text(r, cur ? cur->current_host : NULL);
        rows_text(r, cur && cur->current_port[0] ? cur->current_port : NULL);
        rows_end(r);
    }
}

/* ---- SHOW CONFIG, SHOW VERSION ---- */

static const struct be_column config_cols[] = {
    {"key", TEXT}, {"value", TEXT}, {"default", TEXT}, {"changeable", TEXT}, {"section", TEXT},
};

static void config_rows(struct admin_rows *r)
{
    for (size_t i = 0; i < config_keys_count(); i++) {
        const struct config_key_doc *d = config_keys_doc(i);
        char value[ADMIN_VALUE_MAX];
        config_keys_format(rt.cfg, i, value, sizeof value);
        rows_text(r, d->name);
        rows_textf(r, "%s", value);
        rows_text(r, d->default_value);
        rows_text(r, d->reloadable ? "yes" : "no");
        rows_text(r, d->section);
        rows_end(r);
    }
}

static const struct be_column version_cols[] = {{"version", TEXT}};

static void version_rows(struct admin_rows *r)
{
    rows_text(r, "pgmesh " PGMESH_VERSION);
    rows_end(r);
}

/* The watcher's latest readings (watch.h): what a slot holds back, and whose collation differs. */
static const struct be_column slots_cols[] = {
    {"database", TEXT},     {"host", TEXT},          {"port", INT8},   {"slot_name", TEXT},
    {"slot_type", TEXT},    {"slot_database", TEXT}, {"active", INT8}, {"retained_wal_bytes", INT8},
    {"retained_wal", TEXT}, {"over_warn", INT8},
};

static void slots_rows(struct admin_rows *r)
{
    const struct watch_slot *s;
    size_t n = watch_slots(&s);
    for (size_t i = 0; i < n; i++) {
        rows_text(r, s[i].database);
        rows_text(r, s[i].host);
        rows_int(r, s[i].port);
        rows_text(r, s[i].slot_name);
        rows_text(r, s[i].slot_type);
        rows_text(r, s[i].slot_database[0] ? s[i].slot_database : NULL);
        rows_int(r, s[i].active);
        if (s[i].retained_bytes < 0) {
            rows_text(r, NULL); /* reserves no WAL */
            rows_text(r, NULL);
        } else {
            char size[32];
            watchrule_format_size(s[i].retained_bytes, size, sizeof size);
            rows_int(r, s[i].retained_bytes);
            rows_textf(r, "%s", size);
        }
        rows_int(r, s[i].over_warn);
        rows_end(r);
    }
}

static const struct be_column collations_cols[] = {
    {"database", TEXT}, {"host", TEXT},       {"port", INT8},        {"datcollate", TEXT}, {"datctype", TEXT},
    {"provider", TEXT}, {"icu_locale", TEXT}, {"collversion", TEXT}, {"mismatch", INT8},
};

static void collations_rows(struct admin_rows *r)
{
    const struct watch_collation *c;
    size_t n = watch_collations(&c);
    for (size_t i = 0; i < n; i++) {
        rows_text(r, c[i].database);
        rows_text(r, c[i].host);
        rows_int(r, c[i].port);
        rows_text(r, c[i].datcollate);
        rows_text(r, c[i].datctype);
        rows_text(r, c[i].provider);
        rows_text(r, c[i].icu_locale[0] ? c[i].icu_locale : NULL);
        rows_text(r, c[i].collversion[0] ? c[i].collversion : NULL);
        rows_int(r, c[i].mismatch);
        rows_end(r);
    }
}

#define COLS(a) a, (uint16_t)(sizeof a / sizeof a[0])
static const struct admin_show shows[] = {
    {"POOLS", COLS(pools_cols), pools_rows},
    {"CLIENTS", COLS(clients_cols), clients_rows},
    {"SERVERS", COLS(servers_cols), servers_rows},
    {"STATS", COLS(stats_cols), stats_rows},
    {"DATABASES", COLS(databases_cols), databases_rows},
    {"CONFIG", COLS(config_cols), config_rows},
    {"VERSION", COLS(version_cols), version_rows},
    {"TENANTS", COLS(tenants_cols), tenants_rows},
    {"SLOTS", COLS(slots_cols), slots_rows},
    {"COLLATIONS", COLS(collations_cols), collations_rows},
};
#undef COLS
#define NSHOWS (sizeof shows / sizeof shows[0])

const struct admin_show *admin_show_find(const char *name)
{
    for (size_t i = 0; i < NSHOWS; i++)
        if (strcasecmp(shows[i].name, name) == 0)
            return &shows[i];
    return NULL;
}

const struct admin_show *admin_show_at(size_t i)
{
    return i < NSHOWS ? &shows[i] : NULL;
}
