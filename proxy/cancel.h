/* Cancelling what a server connection runs (for a client's CancelRequest, which client.c checks,
 * and for the statement backstop in limits.c). libpq's PQcancel blocks, so it runs on a
 * short-lived worker thread. */
#ifndef PGMESH_PROXY_CANCEL_H
#define PGMESH_PROXY_CANCEL_H

#include <stdint.h>

struct server;

#include <ev.h>

/* Installs the watcher through which finished cancels come back to the loop. */
void cancel_init(struct ev_loop *loop);
/* Cancels whatever the server connection is running (PQcancel on a worker thread). Until the
 * cancel has been delivered the server connection is not lent to another client. */
void cancel_server(struct server *s);

#endif
