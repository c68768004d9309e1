/* News the lower session modules report upward to the owner of links (proxy/link.c), which fills
 * in session_events once at start (link_init). Calls run one way, from the loop through clients
 * and links down to servers, pools, the relay, limits and cancels; these are how a server's
 * socket, a limit's timer or a finished cancel reach the link without a loop of mutual calls. */
#ifndef PGMESH_PROXY_EVENTS_H
#define PGMESH_PROXY_EVENTS_H

struct pool;
struct server;

struct session_events {
    /* server.c: libpq finished the handshake; the server is ready to be lent. */
    void (*server_connected)(struct server *s);
    /* server.c: a connection attempt of pool p failed (the server is closed already); pool.c:
     * clients wait while server_login_retry holds attempts back. Waiting clients are failed. */
    void (*connect_failed)(struct pool *p, const char *server_message);
    /* server.c: the server's socket is readable. */
    void (*server_input)(struct server *s);
    /* cancel.c: the last cancel in flight on s returned; the server may be fit to lend again. */
    void (*server_settled)(struct server *s);
    /* limits.c: the linked client's transaction broke a role limit and must end (FATAL). */
    void (*limit_expired)(struct server *s, const char *sqlstate, const char *message, const char *detail);
};

extern struct session_events session_events;

#endif
