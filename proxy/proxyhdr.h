/* The PROXY protocol step of a TCP client's startup (proxy_protocol = on): what a load balancer
 * says about the client before the client's own first packet. Reads and consumes the client's
 * input buffer only; the client (client.c) logs, renames itself or closes on the verdict. */
#ifndef PGMESH_PROXY_PROXYHDR_H
#define PGMESH_PROXY_PROXYHDR_H

#include <arpa/inet.h>
#include <stdbool.h>

#include "proxy/conn.h"

enum proxyhdr_verdict {
    PROXYHDR_WAIT,    /* too few bytes to decide (the login timeout bounds the wait) */
    PROXYHDR_NONE,    /* the first bytes are no header: a direct client */
    PROXYHDR_TAKEN,   /* a header, consumed from the input; what follows is the client's */
    PROXYHDR_REFUSED, /* a header from an untrusted peer, or a malformed one: close */
};

struct proxyhdr_result {
    char addr[INET6_ADDRSTRLEN + 6]; /* TAKEN: "host:port" of the source; "": keep the socket's peer */
    char refusal[256];               /* REFUSED: the warning to log, naming the peer and what to change */
};

/* Looks at the start of in; trusted says whether the socket's peer (peer_addr, "host:port") is in
 * proxy_protocol_trusted, as decided at accept. Writes *out on TAKEN and REFUSED. */
enum proxyhdr_verdict proxyhdr_take(struct iobuf *in, bool trusted, const char *peer_addr,
                                    struct proxyhdr_result *out) __attribute__((warn_unused_result));

#endif
