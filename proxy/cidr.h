/* CIDR lists for proxy_protocol_trusted: "127.0.0.1/32, ::1/128, 10.0.0.0/8" parsed once at config
 * load, matched against a peer's socket address at accept. No I/O, no globals. */
#ifndef PGMESH_PROXY_CIDR_H
#define PGMESH_PROXY_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_LIST_MAX 32

struct cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix_len;
};

/* An all-zero list is empty and matches nothing. */
struct cidr_list {
    struct cidr nets[CIDR_LIST_MAX];
    size_t n;
};

/* Comma-separated, blanks around entries allowed; an entry without "/len" is one host. False with
 * err naming the bad entry; *out is written only on success. */
bool cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* An IPv4-mapped IPv6 peer (::ffff:a.b.c.d, from a dual-stack socket) matches IPv4 entries too. */
bool cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa);

#endif
