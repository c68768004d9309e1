/* PROXY protocol headers on accepted TCP connections. A trusted peer's header names the client;
 * anyone else's is refused, since believing it would let any client pick the address it is
 * logged and shown under. Parsing is protocol/proxyproto's; this only applies the trust rule. */
#include "proxy/proxyhdr.h"

#include <stdio.h>
#include <string.h>

#include "protocol/proxyproto.h"

/* The peer without its port, so that one peer's refusals repeat alike (log.h's limiter). */
static enum proxyhdr_verdict refuse(const char *peer_addr, const char *why, struct proxyhdr_result *out)
{
    const char *colon = strrchr(peer_addr, ':');
    int host_len = colon ? (int)(colon - peer_addr) : (int)strlen(peer_addr);
    out->addr[0] = '\0';
    snprintf(out->refusal, sizeof out->refusal, "PROXY protocol header from %.*s refused: %s", host_len, peer_addr,
             why);
    return PROXYHDR_REFUSED;
}

enum proxyhdr_verdict proxyhdr_take(struct iobuf *in, bool trusted, const char *peer_addr,
                                    struct proxyhdr_result *out)
{
    switch (proxyproto_looks_like(iobuf_head(in), iobuf_len(in))) {
    case PROXYPROTO_NOT_HEADER:
        return PROXYHDR_NONE;
    case PROXYPROTO_MAYBE:
        return PROXYHDR_WAIT;
    case PROXYPROTO_HEADER:
        break;
    }
    if (!trusted)
        return refuse(peer_addr,
                      "the address is not in proxy_protocol_trusted (add the load balancer's address there)", out);
    struct proxyproto_header h;
    const char *why = "";
    switch (proxyproto_parse(iobuf_head(in), iobuf_len(in), &h, &why)) {
    case PROXYPROTO_NEED_MORE:
        return PROXYHDR_WAIT;
    case PROXYPROTO_INVALID:
        return refuse(peer_addr, why, out);
    case PROXYPROTO_DONE:
        break;
    }
    char host[INET6_ADDRSTRLEN];
    out->addr[0] = out->refusal[0] = '\0';
    /* LOCAL (a health check) and UNKNOWN name no source: the socket's peer stands. */
    if (!h.local && inet_ntop(h.family == 4 ? AF_INET : AF_INET6, h.addr, host, sizeof host))
        snprintf(out->addr, sizeof out->addr, "%s:%u", host, (unsigned)h.port);
    iobuf_consume(in, h.header_len);
    return PROXYHDR_TAKEN;
}
