/* The one owner of the link between a client and a server: it lends a server to a client (or
 * queues the client in its pool), relays between them, acts on the relay's verdicts, and unlinks
 * them at the end of a transaction (transaction pooling), when either side goes, or when a limit
 * ends the client. Nothing else links, unlinks, or closes one side because of the other. */
#ifndef PGMESH_PROXY_LINK_H
#define PGMESH_PROXY_LINK_H

struct client;
struct pool;

/* Installs session_events (events.h). */
void link_init(void);
/* An authenticated client without a server: processes what it has sent (a Terminate ends it; any
 * other message asks for a server). */
void link_client_idle(struct client *c);
/* The admin console's RESUME: waiting clients get the pool's idle servers, then new ones up to
 * its size. */
void link_pool_resumed(struct pool *p);
/* Bytes arrived from a linked client. */
void link_client_input(struct client *c);
/* The client is going: its server is reset for the next client, or closed. */
void link_client_gone(struct client *c);
/* Shutting down (rt.shutting_down): ends every client that is not inside a transaction with FATAL
 * 57P01 (57P03 before login). Clients in a transaction are left to finish it; link_client_idle
 * ends them when it is over. */
void link_shutdown_sweep(void);

#endif
