/* Pools: one per (database, server role), with their server lists (kept by server_set_state) and
 * wait queue (kept by client_set_state). Connections are opened on demand up to the pool size,
 * again when one closes while clients wait, and after a failed login not before the retry delay,
 * then by the pool itself if no client asks.
 * A pool hands out a server or says who waits first; it never calls into clients or links (a
 * failed login reaches the waiting clients through session_events, as server.c's does). */
#include "proxy/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/config.h"
#include "proxy/events.h"
#include "proxy/log.h"
#include "proxy/runtime.h"
#include "proxy/workers.h"

const char *const pool_param_names[POOL_PARAM_COUNT] = {
    "server_version", "server_encoding", "client_encoding",   "DateStyle",
    "IntervalStyle",  "TimeZone",        "integer_datetimes", "standard_conforming_strings",
    "is_superuser",
};

/* What clients are told before any server connection of their pool has been seen: PostgreSQL
 * 15's defaults for a UTF8 database. Replaced by the real values on the first connection. */
static const char *const param_defaults[POOL_PARAM_COUNT] = {
    "15.0", "UTF8", "UTF8", "ISO, MDY", "postgres", "UTC", "on", "on", "off",
};

/* pool_open_for_waiters after the current callback: never inside a server's close or connect. */
static void kick_later(struct pool *p, ev_tstamp delay_s)
{
    ev_timer_stop(rt.loop, &p->kick);
    ev_timer_set(&p->kick, delay_s > 0 ? delay_s : 0., 0.);
    ev_timer_start(rt.loop, &p->kick);
}

/* While logins fail, the pool tries again at retry_at whether or not a client asks: the server's
 * return (a restart, a standby promoted) is found without a client paying for the attempt, and
 * the clients that come meanwhile are failed at once. One attempt at a time, within the size. */
static bool probe_possible(const struct pool *p)
{
    return p->login_failing && !p->paused && !rt.shutting_down && !pool_connecting(p) && p->nservers < p->size;
}

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pool *p = container_of(w, struct pool, kick);
    if (p->nwaiting == 0 && probe_possible(p) && ev_now(loop) >= p->retry_at) {
        LOG_EVENT(LOG_DEBUG, NULL, "server_probe", NULL, "%s/%s: trying the server again", p->database,
                  p->server_user);
        if (!server_connect(p))
            log_error("%s/%s: out of memory opening a server connection", p->database, p->server_user);
        return;
    }
    pool_open_for_waiters(p);
    if (probe_possible(p))
        kick_later(p, p->retry_at - ev_now(loop));
}

struct pool *pool_find_or_create(const char *database, const char *server_user, const char *conninfo)
{
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        if (strcmp(p->database, database) == 0 && strcmp(p->server_user, server_user) == 0)
            return p;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->database = strdup(database);
    p->server_user = strdup(server_user);
    p->conninfo = strdup(conninfo);
    if (!p->database || !p->server_user || !p->conninfo) {
        free(p->database);
        free(p->server_user);
        free(p->conninfo);
        free(p);
        return NULL;
    }
    p->size = pool_worker_share(rt.cfg->default_pool_size);
    ev_timer_init(&p->kick, kick_cb, 0., 0.);
    TAILQ_INIT(&p->connecting);
    TAILQ_INIT(&p->idle);
    TAILQ_INIT(&p->linked);
    TAILQ_INIT(&p->resetting);
    TAILQ_INIT(&p->waiting);
    TAILQ_INSERT_TAIL(&rt.pools, p, link);
    /* Another pool of the same database lends its PAUSE state (PAUSE db, RESUME db) and
     * already-known parameters; without one, PAUSE without a database applies. */
    p->paused = rt.paused_all;
    struct pool *q;
    TAILQ_FOREACH(q, &rt.pools, link) {
        if (q == p || strcmp(q->database, database) != 0)
            continue;
        p->paused = q->paused;
        if (q->params[0]) {
            for (int i = 0; i < POOL_PARAM_COUNT; i++)
                p->params[i] = q->params[i] ? strdup(q->params[i]) : NULL;
            break;
        }
    }
    return p;
}

const char *pool_param(const struct pool *p, const char *name)
{
    for (int i = 0; i < POOL_PARAM_COUNT; i++) {
        if (strcmp(pool_param_names[i], name) == 0)
            return p->params[i] ? p->params[i] : param_defaults[i];
    }
    return "";
}

void pool_remember_params(struct pool *p, PGconn *pg)
{
    for (int i = 0; i < POOL_PARAM_COUNT; i++) {
        const char *v = PQparameterStatus(pg, pool_param_names[i]);
        if (v && (!p->params[i] || strcmp(p->params[i], v) != 0)) {
            char *copy = strdup(v);
            if (copy) {
                free(p->params[i]);
                p->params[i] = copy;
            }
        }
    }
}

/* How long after a lost server connection its pool's idle ones are checked before being lent:
 * the loop reads the hang-ups of a server that went down within an iteration or two, this only
 * covers a client that asks in between. */
#define SUSPECT_S 5.0

/* Whether an idle server's socket has something to read: an idle backend says nothing unless it
 * is going away (FATAL 57P01 and a hang-up at a shutdown or promotion of another host). One
 * MSG_PEEK, no bytes taken from the relay. */
static bool hung_up(const struct server *s)
{
    char b;
    ssize_t n = recv(s->conn.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void drop_hung_up(struct pool *p)
{
    struct server *s, *next;
    for (s = TAILQ_FIRST(&p->idle); s; s = next) {
        next = TAILQ_NEXT(s, link);
        if (hung_up(s))
            server_close(s, "the idle server connection was closed by the server");
    }
}

struct server *pool_idle_server(struct pool *p, const char *tenant, const char *role, const struct txstart *tx)
{
    if (p->suspect_until > 0 && ev_now(rt.loop) < p->suspect_until)
        drop_hung_up(p);
    /* Most recently used first: the least used ones age out under server_idle_timeout, and the
     * recent ones are warm in the server's caches. */
    struct server *best = NULL, *s;
    int best_tier = -1;
    TAILQ_FOREACH_REVERSE(s, &p->idle, server_list, link) {
        const struct relay *r = &s->relay;
        int tier = 0;
        if (strcmp(r->claims_role, role) == 0) {
            tier = 1;
            if (relay_holds_claims(r, tenant, role))
                tier = relay_holds_applied(r, tx) ? 3 : 2;
        }
        if (tier > best_tier) {
            best = s;
            best_tier = tier;
            if (tier == 3)
                break;
        }
    }
    return best;
}

size_t pool_count_servers(const struct server_list *l)
{
    size_t n = 0;
    const struct server *s;
    TAILQ_FOREACH(s, l, link)
        n++;
    return n;
}

struct client *pool_first_waiter(struct pool *p)
{
    return TAILQ_FIRST(&p->waiting);
}

bool pool_connecting(const struct pool *p)
{
    return !TAILQ_EMPTY(&p->connecting);
}

void pool_open_for_waiters(struct pool *p)
{
    /* One new connection per waiting client not already covered by one in progress. */
    if (p->paused)
        return;
    int in_progress = 0;
    struct server *s;
    TAILQ_FOREACH(s, &p->connecting, link)
        in_progress++;
    if (p->login_failing && p->nwaiting > 0 && in_progress == 0 && ev_now(rt.loop) < p->retry_at) {
        /* The database is down (or refuses the login): no attempt before the retry delay is
         * over, and no client waits for one. */
        session_events.connect_failed(p, p->last_error);
        return;
    }
    /* While logins fail, one attempt at a time finds out whether the server is back. */
    int limit = p->login_failing ? 1 : p->nwaiting;
    while (p->nservers < p->size && in_progress < p->nwaiting && in_progress < limit) {
        if (!server_connect(p)) {
            log_error("%s/%s: out of memory opening a server connection", p->database, p->server_user);
            return;
        }
        in_progress++;
    }
}

void pool_reap_idle(ev_tstamp now)
{
    double limit = (double)rt.cfg->server_idle_timeout_ms / 1000.0;
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        struct server *s, *next;
        for (s = TAILQ_FIRST(&p->idle); s; s = next) {
            next = TAILQ_NEXT(s, link);
            if (limit > 0 && now - s->idle_since >= limit)
                server_close(s, "server_idle_timeout");
        }
    }
}

bool pool_server_outdated(const struct server *s)
{
    return s->generation != s->pool->generation;
}

/* Why s must close instead of going (back) to its pool after a reload; NULL when it may stay. */
const char *pool_retire_reason(const struct server *s)
{
    if (pool_server_outdated(s))
        return "the database's conninfo changed (config reload)";
    if (s->pool->nservers > s->pool->size)
        return "the pool is over default_pool_size (config reload)";
    return NULL;
}

bool pool_reconfigure(struct pool *p, int size, const char *conninfo)
{
    if (conninfo && strcmp(conninfo, p->conninfo) != 0) {
        char *copy = strdup(conninfo);
        if (!copy)
            return false;
        free(p->conninfo);
        p->conninfo = copy;
        p->generation++;
        p->login_failing = false; /* a new conninfo is tried at once, whatever the old one did */
    }
    p->size = size;
    struct server *s, *next;
    for (s = TAILQ_FIRST(&p->idle); s; s = next) {
        next = TAILQ_NEXT(s, link);
        const char *retire = pool_retire_reason(s);
        if (retire) {
            /* server_close logs idle ones at debug; this one is news */
            SERVER_LOG(LOG_INFO, s, "server_closed", LOG_FIELDS(LOG_STR("reason", retire)),
                       "closing idle server connection: %s", retire);
            server_close(s, retire);
        }
    }
    pool_open_for_waiters(p);
    return true;
}

int pool_worker_share(int size)
{
    return workers_share(size, worker_index);
}

void pool_login_failed(struct pool *p, const char *message)
{
    double retry_s = (double)rt.cfg->server_login_retry_ms / 1000.0, now = ev_now(rt.loop);
    if (!p->login_failing) {
        LOG_EVENT(LOG_WARNING, NULL, "server_login_failing",
                  LOG_FIELDS(LOG_STR("database", p->database), LOG_STR("server_user", p->server_user)),
                  "%s/%s: server login failed: new attempts at growing intervals up to %.3g s "
                  "(server_login_retry); clients that need a server meanwhile get FATAL 08006",
                  p->database, p->server_user, retry_s);
        p->failing_since = now;
    }
    p->login_failing = true;
    /* A quarter of the outage so far: the server is found at most that late after it returns (a
     * restart of a second or two costs well under a second), and a long outage costs one attempt
     * per server_login_retry. */
    double delay = (now - p->failing_since) / 4;
    if (delay < 0.1)
        delay = 0.1;
    if (delay > retry_s)
        delay = retry_s;
    p->retry_at = now + delay;
    snprintf(p->last_error, sizeof p->last_error, "%s", message);
    kick_later(p, delay); /* kick_cb: the next attempt, a client waiting or not */
}

void pool_server_lost(struct pool *p)
{
    p->suspect_until = ev_now(rt.loop) + SUSPECT_S;
}

const struct pool *pool_current_for(const char *database)
{
    const struct pool *p, *best = NULL;
    TAILQ_FOREACH(p, &rt.pools, link) {
        if (p->current_since > 0 && strcmp(p->database, database) == 0 &&
            (!best || p->current_since > best->current_since))
            best = p;
    }
    return best;
}

/* With a multi-host conninfo a change of host is a failover (or a switch back): logged. */
static void note_host(struct pool *p, const char *host, const char *port)
{
    host = host ? host : "";
    port = port ? port : "";
    if (p->current_since > 0 && (strcmp(p->current_host, host) != 0 || strcmp(p->current_port, port) != 0))
        LOG_EVENT(LOG_INFO, NULL, "server_host_changed",
                  LOG_FIELDS(LOG_STR("database", p->database), LOG_STR("server_user", p->server_user),
                             LOG_STR("host", host), LOG_STR("port", port)),
                  "%s/%s: server connections now go to %s port %s (were %s port %s)", p->database, p->server_user,
                  host, port, p->current_host, p->current_port);
    snprintf(p->current_host, sizeof p->current_host, "%s", host);
    snprintf(p->current_port, sizeof p->current_port, "%s", port);
    p->current_since = ev_now(rt.loop);
}

void pool_login_ok(struct pool *p, const char *host, const char *port)
{
    note_host(p, host, port);
    if (!p->login_failing)
        return;
    p->login_failing = false;
    LOG_EVENT(LOG_INFO, NULL, "server_login_ok",
              LOG_FIELDS(LOG_STR("database", p->database), LOG_STR("server_user", p->server_user)),
              "%s/%s: server login works again", p->database, p->server_user);
    /* Attempts were one at a time: the other waiting clients get theirs now. */
    if (p->nwaiting > 0)
        kick_later(p, 0.);
}

void pool_server_closed(struct pool *p)
{
    if (p->nwaiting > 0)
        kick_later(p, 0.);
}
