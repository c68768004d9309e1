/* The PROXY protocol step of a TCP client's startup (proxy_protocol = on): what a load balancer
 * says about the client before the client's own first packet. */
#ifndef PGMESH_PROXY_PROXYHDR_H
#define PGMESH_PROXY_PROXYHDR_H

#include <stdbool.h>

struct client;

/* Looks at the client's first bytes while c->proxy is not CLIENT_PROXY_OFF. True: the startup
 * path may go on with what is left of the input (a header, if any, consumed, and c->addr and the
 * log tag now the source it named); c->proxy is then OFF. False: wait for more bytes (the login
 * timeout bounds it), or the client was closed (c->conn.closing). */
bool proxyhdr_take(struct client *c) __attribute__((warn_unused_result));

#endif
