/* Server connections: opened by libpq (PQconnectStartParams + PQconnectPoll driven by libev
 * watchers, so SCRAM, server TLS, multi-host and .pgpass all come from libpq), then used for raw
 * protocol relay on PQsocket(). Owner: its pool; freed after server_close's loop iteration. */
#ifndef PGMESH_PROXY_SERVER_H
#define PGMESH_PROXY_SERVER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/relay.h"
#include "proxy/resolve.h"

struct pool;
struct client;

enum server_state {
    SERVER_CONNECTING, /* libpq handshake in progress */
    SERVER_IDLE,       /* in its pool's idle list, clean */
    SERVER_LINKED,     /* lent to a client */
    SERVER_RESETTING,  /* client gone; pgmesh's own reset query in flight */
    SERVER_CLOSING,
};

struct server {
    struct conn conn;
    uint64_t id;
    char tag[128]; /* "S-<id> db/role" for logs */
    enum server_state state;
    struct pool *pool;
    uint64_t generation; /* the pool's generation (conninfo) it was opened with */
    PGconn *pg;
    int backend_pid;
    struct client *client;                      /* when LINKED */
    TAILQ_ENTRY(server) link;                   /* in the pool list for its state */
    ev_timer timer;                             /* connect timeout */
    ev_timer stmt_timer, idle_timer, age_timer; /* limits.c */
    bool stmt_cancel_sent;                      /* ... stmt_timer now waits for the cancel to act */
    ev_tstamp stmt_deadline;                    /* ... when the running statement's limit ends; 0: none */
    ev_tstamp idle_since;
    ev_tstamp linked_at;        /* when its client got it */
    ev_tstamp connect_time;     /* loop time the connection was started */
    int poll_status;            /* last PQconnectPoll result while CONNECTING */
    int probe_seen;             /* enum enforce_probe: the probe's verdict so far, while CONNECTING */
    bool resolving;             /* CONNECTING, no PGconn yet: waits for a host name lookup (resolve.c) */
    struct resolve_lists hosts; /* CONNECTING: the conninfo's hosts, names resolved (resolve.c) */
    unsigned host_skip;         /* ... how many of them were given up (server_connect_timeout) */

    unsigned cancels_in_flight; /* PQcancel calls not yet done: not lent to another client */
    struct relay relay;         /* what the relay keeps on this connection */
};

/* At start-up, before any connection: the host name lookups' hand-back to the loop. */
void server_init(void);
bool server_connect(struct pool *pool) __attribute__((warn_unused_result));
void server_close(struct server *s, const char *why);
/* Every state change: moves the server between its pool's lists and counters, asserts the
 * transition is legal; CLOSING is terminal. */
void server_set_state(struct server *s, enum server_state st);
/* The server connection as log lines name it, with the client linked to it if any: views into s,
 * its pool and that client, valid while they are. */
struct log_who server_who(const struct server *s);

#define SERVER_LOG(level, s, event, fields, ...)                                                                  \
    do {                                                                                                          \
        if ((level) <= log_min_level) {                                                                           \
            struct log_who who_ = server_who(s);                                                                  \
            log_event((level), &who_, (event), (fields), __VA_ARGS__);                                            \
        }                                                                                                         \
    } while (0)

#endif
