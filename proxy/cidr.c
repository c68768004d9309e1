/* CIDR list parsing and matching for proxy_protocol_trusted. Bits past the prefix in an entry are
 * refused rather than masked: "10.1.2.3/8" is more likely a typo than a wish for 10.0.0.0/8. */
#include "proxy/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the first prefix_len bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix_len)
{
    unsigned whole = prefix_len / 8, rest = prefix_len % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static bool parse_one(const char *entry, struct cidr *out, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(entry, '/');
    size_t hlen = slash ? (size_t)(slash - entry) : strlen(entry);
    struct cidr c = {0};
    if (hlen == 0 || hlen >= sizeof host)
        goto bad;
    memcpy(host, entry, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, c.addr) == 1)
        c.family = AF_INET;
    else if (inet_pton(AF_INET6, host, c.addr) == 1)
        c.family = AF_INET6;
    else
        goto bad;
    unsigned max = c.family == AF_INET ? 32 : 128;
    c.prefix_len = max;
    if (slash) {
        const char *d = slash + 1;
        size_t nd = strspn(d, "0123456789");
        if (nd == 0 || nd > 3 || d[nd] != '\0' || (unsigned)atoi(d) > max)
            goto bad;
        c.prefix_len = (unsigned)atoi(d);
    }
    uint8_t host_bits[16];
    memcpy(host_bits, c.addr, sizeof host_bits);
    for (unsigned bit = c.prefix_len; bit < max; bit++)
        host_bits[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    if (memcmp(host_bits, c.addr, sizeof host_bits) != 0) {
        snprintf(err, errlen, "\"%s\" has bits set past its /%u prefix", entry, c.prefix_len);
        return false;
    }
    *out = c;
    return true;
bad:
    snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address with an optional /prefix length", entry);
    return false;
}

bool cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errlen)
{
    struct cidr_list list = {.n = 0};
    for (const char *p = text;;) {
        p += strspn(p, " \t");
        size_t n = strcspn(p, ",");
        size_t trimmed = n;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed == 0 && (p[n] == ',' || list.n > 0)) {
            snprintf(err, errlen, "empty entry in \"%s\"", text);
            return false;
        }
        if (trimmed > 0) {
            char entry[64];
            if (list.n == CIDR_LIST_MAX) {
                snprintf(err, errlen, "more than %d entries", CIDR_LIST_MAX);
                return false;
            }
            if (trimmed >= sizeof entry) {
                snprintf(err, errlen, "\"%.*s\" is too long for an address", (int)trimmed, p);
                return false;
            }
            memcpy(entry, p, trimmed);
            entry[trimmed] = '\0';
            if (!parse_one(entry, &list.nets[list.n], err, errlen))
                return false;
            list.n++;
        }
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    *out = list;
    return true;
}

bool cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa)
{
    uint8_t v4[4], v6[16];
    bool has_v4 = false, has_v6 = false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        has_v4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        memcpy(v6, a, 16);
        has_v6 = true;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(v4, v6 + 12, 4);
            has_v4 = true;
        }
    }
    for (size_t i = 0; i < list->n; i++) {
        const struct cidr *c = &list->nets[i];
        if (c->family == AF_INET ? has_v4 && prefix_equal(c->addr, v4, c->prefix_len)
                                 : has_v6 && prefix_equal(c->addr, v6, c->prefix_len))
            return true;
    }
    return false;
}
