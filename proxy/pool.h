/* Pools keyed by (database, server role): size limit, FIFO wait queue with query_wait_timeout,
 * idle reaping after server_idle_timeout, and the server parameters last seen, which clients are
 * told at startup. Owner: rt.pools; pools live until exit. */
#ifndef PGMESH_PROXY_POOL_H
#define PGMESH_PROXY_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proxy/server.h"
#include "proxy/stats.h"

struct client;

TAILQ_HEAD(server_list, server);
TAILQ_HEAD(waiter_list, client);

#define POOL_PARAM_COUNT 9
extern const char *const pool_param_names[POOL_PARAM_COUNT];

struct pool {
    TAILQ_ENTRY(pool) link;
    char *database;
    char *server_user;
    char *conninfo;
    uint64_t generation; /* bumped when a reload changes conninfo */
    int size;
    struct server_list connecting, idle, linked, resetting;
    int nservers; /* all but closing */
    struct waiter_list waiting;
    int nwaiting;
    /* Waiting clients are never left to query_wait_timeout: a server that closes while clients
     * wait is replaced (from this timer, outside the closing call chain). After a failed login
     * the pool waits before the next attempt (a quarter of the outage so far, at least 0.1 s and
     * at most server_login_retry: a quick restart is noticed at once, a long outage costs one
     * attempt per server_login_retry), and clients asking
     * meanwhile get the server's message at once (session_events.connect_failed). The timer
     * also makes that next attempt when no client asks for one (kick_cb). */
    ev_timer kick;
    bool login_failing;             /* the last connection attempt failed */
    ev_tstamp retry_at;             /* ... no new attempt before this */
    ev_tstamp failing_since;        /* ... since the first failed attempt: the wait grows with it */
    char last_error[600];           /* ... what clients are told meanwhile */
    bool warned_unprotected;        /* logged once: the database has no pgmesh extension */
    char *params[POOL_PARAM_COUNT]; /* server_version, ... as the last connection reported */
    /* The admin console's PAUSE: no server is lent or opened; waiting clients stay queued until
     * RESUME (link_pool_resumed). */
    bool paused;
    struct stats_counters stats; /* its clients' transactions, queries, bytes and waits */
    /* Which host of the conninfo (PQhost, PQport) the latest successful connection reached: with a
     * multi-host conninfo, libpq's pick (SHOW DATABASES, metrics). Empty until one succeeded. */
    char current_host[256];
    char current_port[16];
    ev_tstamp current_since; /* ... loop time of that connection; 0: none yet */
    /* Until then, idle servers are checked for a hang-up before they are lent: one of the pool's
     * connections was lost, and its siblings to the same (dying) server may be gone too, their
     * end not yet read by the loop. */
    ev_tstamp suspect_until;
};

struct pool *pool_find_or_create(const char *database, const char *server_user, const char *conninfo);
/* The idle server to lend a client with these claims and settings (its transaction start), or NULL:
 * one whose last transaction start already holds them all (nothing to send with the extension),
 * else one with the same tenant and role (no reset between tenants), else the same role, else
 * any; most recently used first within each. */
struct server *pool_idle_server(struct pool *p, const char *tenant, const char *role, const struct txstart *tx);
/* How many servers a pool list holds (the console and metrics, at their readers' pace). */
size_t pool_count_servers(const struct server_list *l);
/* The client waiting longest (FIFO), or NULL; client_set_state takes it off the queue. */
struct client *pool_first_waiter(struct pool *p);
/* Whether a connection attempt is under way. */
bool pool_connecting(const struct pool *p);
/* Opens connections (none while paused) for waiting clients not covered by one in progress, up to the pool size;
 * while server logins fail, at most one, and none before server_login_retry is over: the
 * waiting clients are failed then (session_events.connect_failed). */
void pool_open_for_waiters(struct pool *p);
/* server.c's news: a connection attempt failed (the server's message), one got through, a server
 * of p closed (its waiting clients get a new one). */
void pool_login_failed(struct pool *p, const char *message);
void pool_login_ok(struct pool *p, const char *host, const char *port); /* PQhost, PQport */
void pool_server_closed(struct pool *p);
/* A server of p was lost (hang-up, socket error, FATAL): pool_idle_server checks idle servers for
 * the same before lending them, for a few seconds. */
void pool_server_lost(struct pool *p);
/* The latest successful connection of database's pools (current_host, current_port), or NULL. */
const struct pool *pool_current_for(const char *database);
/* Why a server given back must close instead of being lent (a reload made it outdated or the
 * pool is over its new size), or NULL. */
const char *pool_retire_reason(const struct server *s);
void pool_remember_params(struct pool *p, PGconn *pg);
const char *pool_param(const struct pool *p, const char *name);
/* Closes idle servers past server_idle_timeout. */
void pool_reap_idle(ev_tstamp now);
/* True when s was opened with a conninfo its pool no longer has: it is closed when it next comes
 * back to the pool instead of being lent again. */
bool pool_server_outdated(const struct server *s);
/* A reload: the new size, and the new conninfo (NULL: unchanged), for new connections. Idle servers
 * that are outdated or beyond the size close now, the others when they come back (link.c);
 * waiting clients get connections up to the new size. False when out of memory (nothing changed). */
bool pool_reconfigure(struct pool *p, int size, const char *conninfo) __attribute__((warn_unused_result));
/* This worker's part of a pool size: the workers share it out, each at least 1. */
int pool_worker_share(int size);

#endif
