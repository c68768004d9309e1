/* Server connection lifecycle. libpq does the whole connection handshake (SCRAM, TLS, multi-host,
 * passfile) without blocking the loop: PQconnectPoll is called whenever its socket is ready in the
 * direction libpq asked for. After CONNECTION_OK, pgmesh speaks raw protocol on the same socket
 * (or the SSL object libpq negotiated) and only returns to libpq for PQfinish. */
#include "proxy/server.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/guard.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/enforce.h"
#include "proxy/events.h"
#include "proxy/limits.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/resolve.h"
#include "proxy/runtime.h"
#include "proxy/workers.h"

#define slog(level, s, event, ...) SERVER_LOG(level, s, event, NULL, __VA_ARGS__)

static const char *const state_names[] = {"connecting", "idle", "linked", "resetting", "closing"};

struct log_who server_who(const struct server *s)
{
    const struct client *c = s->client;
    return (struct log_who){.tag = s->tag,
                            .kind = 'S',
                            .id = s->id,
                            .client_id = c ? c->id : 0,
                            .database = s->pool->database,
                            .tenant = c ? c->ident.tenant : NULL,
                            .role = c ? c->ident.role : NULL,
                            .server_user = s->pool->server_user};
}

static struct server_list *list_for(struct pool *p, enum server_state st)
{
    switch (st) {
    case SERVER_CONNECTING:
        return &p->connecting;
    case SERVER_IDLE:
        return &p->idle;
    case SERVER_LINKED:
        return &p->linked;
    case SERVER_RESETTING:
        return &p->resetting;
    case SERVER_CLOSING:
        return NULL;
    }
    return NULL;
}

/* Which states each state may move to. LINKED to LINKED is a server handed from the client whose
 * transaction ended straight to a waiting one. */
static const unsigned legal_next[] = {
    [SERVER_CONNECTING] = 1u << SERVER_IDLE | 1u << SERVER_LINKED | 1u << SERVER_CLOSING,
    [SERVER_IDLE] = 1u << SERVER_LINKED | 1u << SERVER_CLOSING,
    [SERVER_LINKED] = 1u << SERVER_IDLE | 1u << SERVER_LINKED | 1u << SERVER_RESETTING | 1u << SERVER_CLOSING,
    [SERVER_RESETTING] = 1u << SERVER_IDLE | 1u << SERVER_LINKED | 1u << SERVER_CLOSING,
    [SERVER_CLOSING] = 0,
};

void server_set_state(struct server *s, enum server_state st)
{
    struct server_list *from = list_for(s->pool, s->state), *to = list_for(s->pool, st);
    if (s->state == SERVER_CLOSING)
        return; /* terminal */
    assert(legal_next[s->state] & (1u << st));
    slog(LOG_DEBUG, s, "server_state", "%s -> %s", state_names[s->state], state_names[st]);
    if (from)
        TAILQ_REMOVE(from, s, link);
    if (to)
        TAILQ_INSERT_TAIL(to, s, link);
    if (st == SERVER_CLOSING)
        s->pool->nservers--;
    if (st == SERVER_IDLE)
        s->idle_since = ev_now(rt.loop);
    s->state = st;
}

static void server_on_read(struct conn *c)
{
    session_events.server_input(container_of(c, struct server, conn));
}

static void server_on_drained(struct conn *c)
{
    /* Our output to the server drained: the linked client may send more. */
    struct server *s = container_of(c, struct server, conn);
    if (s->client && s->state == SERVER_LINKED)
        conn_resume_reading(&s->client->conn);
}

static void server_on_release(struct conn *c)
{
    struct server *s = container_of(c, struct server, conn);
    resolve_lists_free(&s->hosts);
    ev_timer_stop(rt.loop, &s->timer);
    limits_stop(s);
    if (s->pg)
        PQfinish(s->pg); /* closes the socket */
    conn_destroy(&s->conn);
    relay_destroy(&s->relay);
    free(s);
}

void server_close(struct server *s, const char *why)
{
    if (s->state == SERVER_CLOSING)
        return;
    SERVER_LOG(s->state == SERVER_IDLE ? LOG_DEBUG : LOG_INFO, s, "server_closed",
               LOG_FIELDS(LOG_STR("reason", why)), "closing server connection: %s", why);
    server_set_state(s, SERVER_CLOSING);
    ev_timer_stop(rt.loop, &s->timer);
    limits_stop(s);
    conn_close(&s->conn);
    pool_server_closed(s->pool); /* clients waiting for a server must not wait for this one */
}

static void connect_failed(struct server *s, const char *what)
{
    char msg[512];
    const char *err = s->pg ? PQerrorMessage(s->pg) : "";
    snprintf(msg, sizeof msg, "%s%s", what, err);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    /* libpq's messages span lines ("...: Connection refused\n\tIs the server running..."): one
     * log line each, and one text for the repeat limiter to count. */
    for (char *q = msg; *q; q++) {
        if (*q == '\n' || *q == '\t')
            *q = ' ';
    }
    SERVER_LOG(LOG_WARNING, s, "server_connect_failed", LOG_FIELDS(LOG_STR("error", msg)), "could not connect: %s",
               msg);
    struct pool *p = s->pool;
    pool_login_failed(p, msg); /* before the close: no replacement attempt before server_login_retry */
    server_close(s, "connect failed");
    session_events.connect_failed(p, msg);
}

/* libpq is done (and the probe, if any): the relay takes the socket over. */
static void connected(struct server *s)
{
    ev_timer_stop(rt.loop, &s->timer);
    resolve_lists_free(&s->hosts); /* only an attempt needs them */
    s->backend_pid = PQbackendPID(s->pg);
    conn_attach_fd(&s->conn, PQsocket(s->pg));
    if (PQsslInUse(s->pg))
        s->conn.ssl = PQsslStruct(s->pg, "OpenSSL");
    slog(LOG_DEBUG, s, "server_connected", "connected, backend pid %d%s", s->backend_pid,
         s->conn.ssl ? ", TLS" : "");
    conn_start_reading(&s->conn);
    pool_login_ok(s->pool, PQhost(s->pg), PQport(s->pg));
    session_events.server_connected(s);
}

/* Both watchers on the one the connection waits for next. */
static void wait_for(struct server *s, bool write)
{
    int fd = PQsocket(s->pg);
    ev_io_stop(rt.loop, &s->conn.rio);
    ev_io_stop(rt.loop, &s->conn.wio);
    s->conn.fd = fd;
    ev_io_set(&s->conn.rio, fd, EV_READ);
    ev_io_set(&s->conn.wio, fd, EV_WRITE);
    ev_io_start(rt.loop, write ? &s->conn.wio : &s->conn.rio);
}

/* The probe's verdict: the extension's nonce, or whether the pool may use a server without it. */
static void probe_done(struct server *s, enum enforce_probe verdict, const char *nonce, const char *why)
{
    if (verdict == PROBE_FAILED) {
        connect_failed(s, why[0] ? why : "the probe for the pgmesh extension failed");
        return;
    }
    if (verdict == PROBE_FOUND) {
        s->relay.enforced = true;
        memcpy(s->relay.nonce, nonce, sizeof s->relay.nonce);
    } else if (rt.cfg->server_enforcement == ENFORCE_REQUIRE) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "database \"%s\" has no pgmesh extension, and server_enforcement = require: run "
                 "scripts/server-setup.sh on the database host (or CREATE EXTENSION pgmesh in it)",
                 s->pool->database);
        s->pool->stats.enforce_refusals++;
        connect_failed(s, msg);
        return;
    } else if (!s->pool->warned_unprotected) {
        s->pool->warned_unprotected = true;
        slog(LOG_WARNING, s, "server_unprotected",
             "database %s has no pgmesh extension: claims and limits are set with plain SET, which SQL run "
             "inside functions, views and DO blocks can change, so every transaction sends them again (no "
             "fast path; scripts/server-setup.sh installs it)",
             s->pool->database);
    }
    connected(s);
}

static void probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct server *s =
        (revents & EV_READ) ? container_of(w, struct server, conn.rio) : container_of(w, struct server, conn.wio);
    char nonce[ENFORCE_NONCE_LEN + 1] = "", why[300] = "";
    bool want_write;
    uint32_t switch_oid = 0;
    enum enforce_probe seen = (enum enforce_probe)s->probe_seen;
    enum enforce_probe verdict =
        enforce_probe_poll(s->pg, &seen, nonce, &switch_oid, &want_write, why, sizeof why);
    s->probe_seen = (int)seen;
    if (seen == PROBE_FOUND && nonce[0]) {
        memcpy(s->relay.nonce, nonce, sizeof s->relay.nonce);
        s->relay.switch_oid = switch_oid;
    }
    if (verdict == PROBE_BUSY)
        wait_for(s, want_write);
    else
        probe_done(s, verdict, s->relay.nonce, why);
}

/* What the guard's lexer assumes of every session it reads SQL for. A role or database default
 * (ALTER ROLE ... SET, which a reader may run on itself from inside a function) could otherwise
 * start every new server connection with backslashes the guard reads differently. */
static const char *session_unfit(PGconn *pg)
{
    const char *scs = PQparameterStatus(pg, "standard_conforming_strings");
    const char *enc = PQparameterStatus(pg, "client_encoding");
    if (!scs || strcmp(scs, "on") != 0)
        return "the server session starts with standard_conforming_strings off (a role or database "
               "default?): pgmesh's guard needs it on";
    if (!enc || !guard_check_startup_option("client_encoding", enc, NULL)) /* no role pins it */
        return "the server session starts with a client_encoding pgmesh cannot read SQL in (a role or "
               "database default?): use UTF8";
    return NULL;
}

/* Connected: with enforcement on, ask the server for the extension first, still under the
 * connect timeout. */
static void logged_in(struct server *s)
{
    const char *unfit = session_unfit(s->pg);
    if (unfit) {
        connect_failed(s, unfit);
        return;
    }
    if (!enforce_active()) {
        connected(s);
        return;
    }
    if (!enforce_probe_start(s->pg)) {
        connect_failed(s, "could not send the probe for the pgmesh extension: ");
        return;
    }
    s->probe_seen = PROBE_BUSY;
    ev_set_cb(&s->conn.rio, probe_io_cb);
    ev_set_cb(&s->conn.wio, probe_io_cb);
    wait_for(s, true);
}

/* Drives PQconnectPoll from whichever watcher fired; re-arms for the direction libpq wants. */
static void poll_connect(struct server *s)
{
    PostgresPollingStatusType st = PQconnectPoll(s->pg);
    if (st == PGRES_POLLING_OK) {
        logged_in(s);
        return;
    }
    if (st == PGRES_POLLING_FAILED) {
        connect_failed(s, "");
        return;
    }
    wait_for(s, st != PGRES_POLLING_READING);
}

static void connect_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct server *s =
        (revents & EV_READ) ? container_of(w, struct server, conn.rio) : container_of(w, struct server, conn.wio);
    poll_connect(s);
}

static void start_libpq(struct server *s);

/* server_connect_timeout holds for each host of a multi-host conninfo, as libpq's own
 * connect_timeout does (which only its blocking connect applies): a host that does not answer at
 * all (a failed machine whose address drops packets) must not keep every attempt from reaching
 * the next one. libpq cannot be told to give a host up, so the attempt starts over with the hosts
 * after it. Not once logged in: the host answered, the probe is what is slow. */
static bool next_host(struct server *s)
{
    if (!s->pg || PQstatus(s->pg) == CONNECTION_OK)
        return false;
    const char *host = PQhost(s->pg), *port = PQport(s->pg);
    long k = resolve_lists_find(&s->hosts, s->host_skip, host, port, PQhostaddr(s->pg));
    if (k < 0 || (size_t)k + 1 >= resolve_lists_count(&s->hosts))
        return false;
    SERVER_LOG(LOG_WARNING, s, "server_host_timeout",
               LOG_FIELDS(LOG_STR("host", host ? host : ""), LOG_STR("port", port ? port : "")),
               "%s port %s did not answer within server_connect_timeout: trying the next host", host ? host : "",
               port ? port : "");
    ev_io_stop(rt.loop, &s->conn.rio);
    ev_io_stop(rt.loop, &s->conn.wio);
    PQfinish(s->pg);
    s->pg = NULL;
    s->conn.fd = -1;
    s->host_skip = (unsigned)k + 1;
    ev_timer_set(&s->timer, (double)rt.cfg->server_connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(rt.loop, &s->timer);
    start_libpq(s);
    return true;
}

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *s = container_of(w, struct server, timer);
    if (!next_host(s))
        connect_failed(s, "timeout expired (server_connect_timeout)");
}

/* libpq takes over: with the conninfo's host names already resolved (resolve.c), as hostaddr
 * entries next to them, so that PQconnectStartParams does not block the loop in getaddrinfo. */
static void start_libpq(struct server *s)
{
    struct pool *p = s->pool;
    if (!s->hosts.host) {
        /* The whole list, kept for the attempt: next_host skips hosts of it. */
        char err[256] = "";
        enum resolve_status rs = resolve_conninfo(p->conninfo, true, &s->hosts, err, sizeof err);
        s->resolving = rs == RESOLVE_PENDING;
        if (s->resolving) {
            slog(LOG_DEBUG, s, "server_resolving", "waiting for the host name lookup");
            return;
        }
        if (rs == RESOLVE_FAILED) {
            connect_failed(s, err);
            return;
        }
    }
    struct resolve_lists rl = {0};
    if (s->hosts.host && (!resolve_lists_copy(&s->hosts, &rl) || !resolve_lists_drop(&rl, s->host_skip))) {
        resolve_lists_free(&rl);
        connect_failed(s, "out of memory");
        return;
    }
    /* Before dbname, so a conninfo's own client_encoding or options win: the two settings the
     * guard's lexer relies on, whatever defaults the role or database have (session_unfit).
     * After it, what must override the conninfo: the role, and the resolved host lists. */
    const char *keys[9] = {"client_encoding", "options", "dbname", "user", "fallback_application_name"};
    const char *vals[9] = {"UTF8", "-c standard_conforming_strings=on", p->conninfo, p->server_user, "pgmesh"};
    size_t n = resolve_lists_params(&rl, keys, vals, 5);
    keys[n] = vals[n] = NULL;
    s->pg = PQconnectStartParams(keys, vals, 1);
    resolve_lists_free(&rl);
    if (!s->pg || PQstatus(s->pg) == CONNECTION_BAD) {
        connect_failed(s, s->pg ? "" : "out of memory");
        return;
    }
    /* During the handshake both watchers call poll_connect; conn_attach_fd gives them back to
     * the relay once libpq is done. */
    int fd = PQsocket(s->pg);
    s->conn.fd = fd;
    ev_io_init(&s->conn.rio, connect_io_cb, fd, EV_READ);
    ev_io_init(&s->conn.wio, connect_io_cb, fd, EV_WRITE);
    ev_io_start(rt.loop, &s->conn.wio); /* as if PQconnectPoll had said WRITING */
    slog(LOG_DEBUG, s, "server_connecting", "connecting");
}

/* Lookups finished: the servers waiting for one go on (their names are in the cache now). */
static void lookups_done(void)
{
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        struct server *s, *next;
        for (s = TAILQ_FIRST(&p->connecting); s; s = next) {
            next = TAILQ_NEXT(s, link);
            if (s->resolving)
                start_libpq(s);
        }
    }
}

void server_init(void)
{
    resolve_init(rt.loop);
    resolve_subscribe(lookups_done);
}

bool server_connect(struct pool *p)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s)
        return false;
    s->id = ++rt.next_server_id * (uint64_t)worker_count + (uint64_t)worker_index;
    s->pool = p;
    s->connect_time = ev_now(rt.loop);
    relay_init(&s->relay);
    s->generation = p->generation; /* pool_server_outdated: opened with p->conninfo as it is now */
    snprintf(s->tag, sizeof s->tag, "S-%llu %s/%s", (unsigned long long)s->id, p->database, p->server_user);
    conn_init(&s->conn, -1, server_on_read, server_on_drained, server_on_release);
    s->state = SERVER_CONNECTING;
    TAILQ_INSERT_TAIL(&p->connecting, s, link);
    p->nservers++;
    limits_init(s);
    /* The timeout covers the host name lookup too: a name that never answers ends here. */
    ev_timer_init(&s->timer, connect_timeout_cb, (double)rt.cfg->server_connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(rt.loop, &s->timer);
    start_libpq(s);
    return true;
}
