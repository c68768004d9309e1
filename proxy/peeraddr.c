/* The peers key's list of addresses (see peers.h): parsed at config load to check it and again
 * when a cancel goes to a peer, which is rare enough not to keep a parsed copy. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/peers.h"

static bool parse_one(const char *item, size_t n, struct peer_addr *p, char *err, size_t errlen)
{
    char buf[128];
    if (n >= sizeof buf)
        goto bad;
    memcpy(buf, item, n);
    buf[n] = '\0';
    char *eq = strchr(buf, '=');
    if (!eq)
        goto bad;
    *eq = '\0';
    char *end;
    long id = strtol(buf, &end, 10);
    if (end == buf || *end != '\0' || id < 1 || id > PEERS_MAX)
        goto bad;
    char *host = eq + 1, *colon;
    if (*host == '[') {
        char *close = strchr(host, ']');
        if (!close || close[1] != ':')
            goto bad;
        *close = '\0';
        host++;
        colon = close + 1;
    } else {
        colon = strrchr(host, ':');
        if (!colon)
            goto bad;
        *colon = '\0';
    }
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        goto bad;
    memset(p, 0, sizeof *p);
    p->id = (int)id;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&p->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&p->sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        p->len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        p->len = sizeof *v6;
    } else {
        goto bad;
    }
    return true;
bad:
    snprintf(err, errlen,
             "invalid peer \"%.*s\": expected id=address:port with an id from 1 to %d and a numeric "
             "address (IPv6 in brackets)",
             (int)(n > 100 ? 100 : n), item, PEERS_MAX);
    return false;
}

bool peers_parse(const char *list, struct peer_addr *out, size_t *nout, char *err, size_t errlen)
{
    bool seen[PEERS_MAX + 1] = {false};
    size_t count = 0;
    for (const char *p = list; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, " ,");
        if (n == 0)
            break;
        struct peer_addr one;
        if (!parse_one(p, n, &one, err, errlen))
            return false;
        if (seen[one.id]) {
            snprintf(err, errlen, "peer %d is listed twice in peers", one.id);
            return false;
        }
        seen[one.id] = true;
        if (out)
            out[count] = one;
        count++;
        p += n;
    }
    if (nout)
        *nout = count;
    return true;
}
