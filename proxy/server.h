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
#include "proxy/opq.h"
#include "proxy/params.h"
#include "proxy/stmt.h"

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
    char tag[128];               /* "S-<id> db/role" for logs */
    enum server_state state;
    struct pool *pool;
    PGconn *pg;
    int backend_pid;
    struct client *client;       /* when LINKED */
    TAILQ_ENTRY(server) link;    /* in the pool list for its state */
    ev_timer timer;              /* connect timeout */
    ev_timer stmt_timer, idle_timer, age_timer; /* limits.c */
    ev_tstamp idle_since;
    int poll_status;             /* last PQconnectPoll result while CONNECTING */

    /* Relay bookkeeping (relay.c). */
    struct opq ops;
    uint32_t body_remaining;     /* bytes of the current server message still to pass */
    bool body_drop;              /* ... and whether they are dropped instead of forwarded */
    char tx_status;              /* from the last ReadyForQuery */
    bool at_boundary;            /* next client message may start a transaction */
    bool open_extended;          /* client extended messages sent since the last Sync */
    bool in_copy;
    uint64_t claims_owner;       /* client whose claims may be committed here; 0: none */
    char claims_tenant[65];      /* ... and those claims ("" when none) */
    char claims_role[65];
    char application_name[65];   /* as pgmesh last set it ("" when unknown) */
    struct param_set have;       /* session parameters as the linked clients left them */
    bool session_dirty;          /* a client statement may have left session state: DISCARD ALL
                                  * before another client runs here */
    bool skipping;               /* an extended message failed: the server skips to Sync */
    unsigned cancels_in_flight;  /* PQcancel calls not yet done: not lent to another client */
    uint64_t batch;              /* counts Syncs and Queries sent: statements used in the
                                  * current one are not evicted */
    struct sstmt_set stmts;      /* server-side prepared statements (transaction pooling) */
};

bool server_connect(struct pool *pool) __attribute__((warn_unused_result));
void server_close(struct server *s, const char *why);
void server_set_state(struct server *s, enum server_state st);


#endif
