/* Forwarding between a linked client and server: streams message bodies, injects the
 * per-transaction claims Query, keeps the queue of expected replies, hides pgmesh's own replies,
 * and decides when the server can go back to its pool. */
#ifndef PGMESH_PROXY_RELAY_H
#define PGMESH_PROXY_RELAY_H

#include <stdbool.h>

struct client;
struct server;

/* Starts a link: the server is clean and idle. */
void relay_begin(struct client *c, struct server *s);
/* Client bytes arrived (or were waiting) while linked. */
void relay_from_client(struct client *c);
/* Server bytes arrived while linked or resetting. */
void relay_from_server(struct server *s);
/* The client went away: give the server back clean, reset it, or close it. */
void relay_client_gone(struct server *s);
/* Sends pgmesh's own simple query, replies swallowed. */
bool relay_own_query(struct server *s, const char *sql) __attribute__((warn_unused_result));

#endif
