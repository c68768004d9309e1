/* Cancelling what a server connection runs (for a client's CancelRequest, checked here,
 * and for the statement backstop in limits.c). libpq's PQcancel blocks, so it runs on a
 * short-lived worker thread. */
#ifndef PGMESH_PROXY_CANCEL_H
#define PGMESH_PROXY_CANCEL_H

#include <stdint.h>

struct server;

#include <ev.h>

/* A CancelRequest's pid and key, received here or passed on by another worker: sent on to the
 * peer or worker the pid names, else checked against this worker's clients and acted on. */
void cancel_request(uint32_t pid, uint32_t key);
/* Installs the watcher through which finished cancels come back to the loop. */
void cancel_init(struct ev_loop *loop);
/* Cancels whatever the server connection is running (PQcancel on a worker thread). Until the
 * cancel has been delivered the server connection is not lent to another client. */
void cancel_server(struct server *s);

#endif
