/* PROXY protocol header, versions 1 (text) and 2 (binary), as a load balancer such as HAProxy sends
 * it before the client's own bytes (haproxy.org/download/2.6/doc/proxy-protocol.txt). Bytes in,
 * verdict and source address out: no sockets, no logging, no configuration. Whether a peer may
 * send a header at all is the caller's decision. */
#ifndef PGMESH_PROTOCOL_PROXYPROTO_H
#define PGMESH_PROTOCOL_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* v1: "PROXY ... \r\n" is at most 107 bytes, CRLF included (spec section 2.1). */
#define PROXYPROTO_V1_MAX 107
/* v2: 12-byte signature, version/command, family/transport, 16-bit length (spec section 2.2). */
#define PROXYPROTO_V2_HEADER 16

enum proxyproto_result {
    PROXYPROTO_NEED_MORE, /* a valid prefix so far */
    PROXYPROTO_INVALID,   /* not a PROXY header, or a malformed one; why says which */
    PROXYPROTO_DONE,      /* a whole header: header_len bytes, then the client's own */
};

/* What a header says. With local set (v1 UNKNOWN, v2 LOCAL, v2 AF_UNSPEC or AF_UNIX) the sender
 * names no TCP source and the socket's peer address stands; otherwise family is 4 or 6 and addr
 * holds that many network-order bytes (4 or 16). */
struct proxyproto_header {
    size_t header_len;
    int version; /* 1 or 2 */
    bool local;
    int family;
    uint8_t addr[16];
    uint16_t port;
};

enum proxyproto_start {
    PROXYPROTO_NOT_HEADER, /* the first bytes cannot begin a PROXY header */
    PROXYPROTO_MAYBE,      /* too few bytes to tell: all of them match a signature so far */
    PROXYPROTO_HEADER,     /* "PROXY " or the whole v2 signature */
};

/* The cheap look at the first len bytes. No startup-class packet can begin like a header: its
 * first byte would make a length over 200 MB. */
enum proxyproto_start proxyproto_looks_like(const uint8_t *p, size_t len);

/* Parses a header at the start of p. On DONE fills *out (untouched otherwise); on INVALID writes
 * a short reason (static text) to *why. Never reads past len. */
enum proxyproto_result proxyproto_parse(const uint8_t *p, size_t len, struct proxyproto_header *out,
                                        const char **why) __attribute__((warn_unused_result));

#endif
