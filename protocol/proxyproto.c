/* PROXY protocol v1 and v2 header parser (haproxy.org/download/2.6/doc/proxy-protocol.txt). Only
 * the source address and port are kept; the destination is checked for shape and dropped, and v2
 * TLVs are walked for bounds and skipped. Returns NEED_MORE on any valid prefix, so the caller may
 * feed it every read until it decides. */
#include "protocol/proxyproto.h"

#include <arpa/inet.h>
#include <string.h>

#include "protocol/buf.h"

static const uint8_t v1_sig[] = {'P', 'R', 'O', 'X', 'Y', ' '};
static const uint8_t v2_sig[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* v2 byte 13 (section 2.2): version in the high nibble, command in the low one. */
#define V2_VERSION 0x2
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
/* v2 byte 14: address family high, transport low. */
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_TRANSPORT_STREAM 0x1
/* Address block sizes for AF_INET, AF_INET6, AF_UNIX: source, destination and (for IP) ports. */
#define V2_INET_LEN 12
#define V2_INET6_LEN 36
#define V2_UNIX_LEN 216

/* How much of p matches sig: the whole of p (a prefix, maybe all of sig), or not. */
static bool prefix_matches(const uint8_t *p, size_t len, const uint8_t *sig, size_t siglen)
{
    return memcmp(p, sig, len < siglen ? len : siglen) == 0;
}

enum proxyproto_start proxyproto_looks_like(const uint8_t *p, size_t len)
{
    if (len == 0)
        return PROXYPROTO_MAYBE;
    if (prefix_matches(p, len, v1_sig, sizeof v1_sig))
        return len >= sizeof v1_sig ? PROXYPROTO_HEADER : PROXYPROTO_MAYBE;
    if (prefix_matches(p, len, v2_sig, sizeof v2_sig))
        return len >= sizeof v2_sig ? PROXYPROTO_HEADER : PROXYPROTO_MAYBE;
    return PROXYPROTO_NOT_HEADER;
}

static enum proxyproto_result invalid(const char **why, const char *what)
{
    *why = what;
    return PROXYPROTO_INVALID;
}

/* A v1 port: decimal 0..65535 without sign or leading zeros. */
static bool v1_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(s[i] - '0');
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* Splits line at single spaces into at most max fields; false on an empty field or too many. */
static bool v1_split(char *line, char **fields, size_t max, size_t *n)
{
    *n = 0;
    for (char *p = line;;) {
        char *sp = strchr(p, ' ');
        if (*n == max || sp == p || *p == '\0')
            return false;
        fields[(*n)++] = p;
        if (!sp)
            return true;
        *sp = '\0';
        p = sp + 1;
    }
}

/* The line without its CRLF, NUL-terminated in a copy (fits PROXYPROTO_V1_MAX). */
static enum proxyproto_result v1_fields(char *line, size_t header_len, struct proxyproto_header *out,
                                        const char **why)
{
    char *f[7];
    size_t n;
    struct proxyproto_header h = {.header_len = header_len, .version = 1};
    if (strncmp(line, "PROXY UNKNOWN", 13) == 0 && (line[13] == '\0' || line[13] == ' ')) {
        /* Section 2.1: the rest of an UNKNOWN line is ignored, the real endpoints stand. */
        h.local = true;
        *out = h;
        return PROXYPROTO_DONE;
    }
    if (!v1_split(line, f, 7, &n) || n != 6)
        return invalid(why, "v1 header: expected PROXY TCP4|TCP6 src dst sport dport");
    int af;
    if (strcmp(f[1], "TCP4") == 0) {
        af = AF_INET;
        h.family = 4;
    } else if (strcmp(f[1], "TCP6") == 0) {
        af = AF_INET6;
        h.family = 6;
    } else {
        return invalid(why, "v1 header: protocol is not TCP4, TCP6 or UNKNOWN");
    }
    uint8_t dst[16];
    uint16_t dport;
    if (inet_pton(af, f[2], h.addr) != 1 || inet_pton(af, f[3], dst) != 1)
        return invalid(why, "v1 header: invalid address");
    if (!v1_port(f[4], &h.port) || !v1_port(f[5], &dport))
        return invalid(why, "v1 header: invalid port");
    *out = h;
    return PROXYPROTO_DONE;
}

static enum proxyproto_result parse_v1(const uint8_t *p, size_t len, struct proxyproto_header *out,
                                       const char **why)
{
    /* The CR may stand at most at byte 105, its LF at 106. */
    for (size_t i = sizeof v1_sig; i < len && i < PROXYPROTO_V1_MAX - 1; i++) {
        if (p[i] == '\r') {
            if (i + 1 == len)
                return PROXYPROTO_NEED_MORE;
            if (p[i + 1] != '\n')
                return invalid(why, "v1 header: CR not followed by LF");
            char line[PROXYPROTO_V1_MAX];
            memcpy(line, p, i);
            line[i] = '\0';
            return v1_fields(line, i + 2, out, why);
        }
        /* Printable ASCII only: garbage is refused as it arrives, not after 107 bytes. */
        if (p[i] < 0x20 || p[i] > 0x7e)
            return invalid(why, "v1 header: unexpected byte before CRLF");
    }
    if (len >= PROXYPROTO_V1_MAX - 1)
        return invalid(why, "v1 header: no CRLF within 107 bytes");
    return PROXYPROTO_NEED_MORE;
}

/* TLVs (section 2.2.7) fill the rest of the block: type, 16-bit length, value. Skipped, but each
 * must fit. */
static bool v2_tlvs_fit(struct pq_reader *r)
{
    while (rd_remaining(r) > 0) {
        (void)rd_u8(r);
        uint16_t n = rd_u16(r);
        (void)rd_bytes(r, n);
        if (r->bad)
            return false;
    }
    return true;
}

static enum proxyproto_result parse_v2(const uint8_t *p, size_t len, struct proxyproto_header *out,
                                       const char **why)
{
    if (len < PROXYPROTO_V2_HEADER)
        return PROXYPROTO_NEED_MORE;
    struct pq_reader r;
    rd_init(&r, p + sizeof v2_sig, PROXYPROTO_V2_HEADER - sizeof v2_sig);
    uint8_t ver_cmd = rd_u8(&r), fam = rd_u8(&r);
    uint16_t body_len = rd_u16(&r);
    unsigned cmd = ver_cmd & 0xf, af = fam >> 4, transport = fam & 0xf;
    if (ver_cmd >> 4 != V2_VERSION)
        return invalid(why, "v2 header: version is not 2");
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return invalid(why, "v2 header: command is neither LOCAL nor PROXY");
    struct proxyproto_header h = {.header_len = PROXYPROTO_V2_HEADER + (size_t)body_len, .version = 2};
    if (cmd == V2_CMD_PROXY) {
        if (af > V2_AF_UNIX || transport > 2)
            return invalid(why, "v2 header: unknown address family or transport");
        if ((af == V2_AF_INET || af == V2_AF_INET6) && transport != V2_TRANSPORT_STREAM)
            return invalid(why, "v2 header: transport is not a stream");
        size_t need = af == V2_AF_INET    ? V2_INET_LEN
                      : af == V2_AF_INET6 ? V2_INET6_LEN
                      : af == V2_AF_UNIX  ? V2_UNIX_LEN
                                          : 0;
        if (body_len < need)
            return invalid(why, "v2 header: too short for its address family");
    }
    if (len < h.header_len)
        return PROXYPROTO_NEED_MORE;
    /* LOCAL (health checks), AF_UNSPEC and AF_UNIX name no TCP source: the socket's peer stands,
     * and the block is discarded unread (section 2.2). */
    if (cmd == V2_CMD_LOCAL || af == V2_AF_UNSPEC) {
        h.local = true;
        *out = h;
        return PROXYPROTO_DONE;
    }
    rd_init(&r, p + PROXYPROTO_V2_HEADER, body_len);
    size_t alen = af == V2_AF_INET ? 4 : 16;
    if (af == V2_AF_UNIX) {
        h.local = true;
        (void)rd_bytes(&r, V2_UNIX_LEN);
    } else {
        h.family = af == V2_AF_INET ? 4 : 6;
        struct span src = rd_bytes(&r, alen);
        (void)rd_bytes(&r, alen); /* destination */
        h.port = rd_u16(&r);
        (void)rd_u16(&r); /* destination port */
        if (r.bad)
            return invalid(why, "v2 header: too short for its address family");
        memcpy(h.addr, src.p, alen);
    }
    if (!v2_tlvs_fit(&r))
        return invalid(why, "v2 header: a TLV runs past the header");
    *out = h;
    return PROXYPROTO_DONE;
}

enum proxyproto_result proxyproto_parse(const uint8_t *p, size_t len, struct proxyproto_header *out,
                                        const char **why)
{
    switch (proxyproto_looks_like(p, len)) {
    case PROXYPROTO_NOT_HEADER:
        return invalid(why, "not a PROXY protocol header");
    case PROXYPROTO_MAYBE:
        return PROXYPROTO_NEED_MORE;
    case PROXYPROTO_HEADER:
        break;
    }
    if (p[0] == 'P')
        return parse_v1(p, len, out, why);
    return parse_v2(p, len, out, why);
}
