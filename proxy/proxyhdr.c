/* PROXY protocol headers on accepted TCP connections. A trusted peer (proxy_protocol_trusted at
 * accept) may send one, and its source address then names the client everywhere c->addr does:
 * the log tag, JSON logs, SHOW CLIENTS. Anyone else's header is refused, since believing it would
 * let any client pick the address it is logged under. Parsing is protocol/proxyproto's. */
#include "proxy/proxyhdr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proxyproto.h"
#include "proxy/client.h"
#include "proxy/conn.h"
#include "proxy/log.h"

/* The socket's peer address without its port, for messages that repeat per peer. */
static void peer_host(const struct client *c, char *out, size_t len)
{
    const char *colon = strrchr(c->addr, ':');
    size_t n = colon ? (size_t)(colon - c->addr) : strlen(c->addr);
    snprintf(out, len, "%.*s", (int)n, c->addr);
}

static void refuse(struct client *c, const char *event, const char *why)
{
    char host[64];
    peer_host(c, host, sizeof host);
    CLIENT_LOG(LOG_WARNING, c, event, LOG_FIELDS(LOG_STR("peer", host), LOG_STR("reason", why)),
               "PROXY protocol header from %s refused: %s", host, why);
    client_close(c, "PROXY protocol header refused");
}

/* c->addr and the tag ("C-<id> @addr" before the startup packet) become the header's source;
 * the socket's peer is kept on memory exhaustion (the client is still named). */
static void take_source(struct client *c, const struct proxyproto_header *h)
{
    char host[INET6_ADDRSTRLEN];
    if (!inet_ntop(h->family == 4 ? AF_INET : AF_INET6, h->addr, host, sizeof host))
        return;
    char *addr, *tag;
    if (asprintf(&addr, "%s:%u", host, (unsigned)h->port) < 0)
        return;
    if (asprintf(&tag, "C-%llu @%s", (unsigned long long)c->id, addr) < 0) {
        free(addr);
        return;
    }
    CLIENT_LOG(LOG_DEBUG, c, "proxy_header", LOG_FIELDS(LOG_STR("source", addr)),
               "PROXY protocol v%d header: client address %s", h->version, addr);
    free(c->addr);
    free(c->tag);
    c->addr = addr;
    c->tag = tag;
}

bool proxyhdr_take(struct client *c)
{
    struct iobuf *in = &c->conn.in;
    switch (proxyproto_looks_like(iobuf_head(in), iobuf_len(in))) {
    case PROXYPROTO_NOT_HEADER:
        c->proxy = CLIENT_PROXY_OFF; /* a direct client, trusted peer or not */
        return true;
    case PROXYPROTO_MAYBE:
        return false;
    case PROXYPROTO_HEADER:
        break;
    }
    if (c->proxy != CLIENT_PROXY_TRUSTED) {
        refuse(c, "proxy_header_untrusted",
               "the address is not in proxy_protocol_trusted (add the load balancer's address there)");
        return false;
    }
    struct proxyproto_header h;
    const char *why = "";
    switch (proxyproto_parse(iobuf_head(in), iobuf_len(in), &h, &why)) {
    case PROXYPROTO_NEED_MORE:
        return false;
    case PROXYPROTO_INVALID:
        refuse(c, "proxy_header_invalid", why);
        return false;
    case PROXYPROTO_DONE:
        break;
    }
    /* LOCAL (a health check) and UNKNOWN name no source: the socket's peer stands. */
    if (!h.local)
        take_source(c, &h);
    iobuf_consume(in, h.header_len);
    c->proxy = CLIENT_PROXY_OFF;
    return true;
}
