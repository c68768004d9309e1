/* Host names of a [databases] conninfo, resolved off the loop. libpq resolves a host name with a
 * blocking getaddrinfo inside PQconnectStartParams, which would stop every client for as long as
 * DNS takes; pgmesh looks names up on a worker thread, keeps the answers a few seconds, and hands
 * libpq the addresses as hostaddr next to host (which libpq still uses for TLS verification and
 * .pgpass). Loop thread only, except the lookups themselves. */
#ifndef PGMESH_PROXY_RESOLVE_H
#define PGMESH_PROXY_RESOLVE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

enum resolve_status {
    RESOLVE_NONE,    /* nothing to resolve: addresses, socket directories, or hostaddr given */
    RESOLVE_READY,   /* the lists to pass libpq are in out */
    RESOLVE_PENDING, /* a lookup runs; resolve_subscribe's callbacks say when to ask again */
    RESOLVE_FAILED,  /* no host of the list resolved: err says why */
};

/* What to pass libpq after dbname (later keywords override the conninfo's): every host entry
 * that is a name repeated once per address it resolved to, with the matching hostaddr and port
 * entries (empty hostaddr: libpq uses that entry's host as it is); port NULL when the conninfo
 * has none (libpq's default applies). Owned by the caller. */
struct resolve_lists {
    char *host, *hostaddr, *port;
};

void resolve_init(struct ev_loop *loop);
/* done runs on the loop after lookups finished: who waits for one asks again (server.c, watch.c).
 * False when RESOLVE_SUBSCRIBERS are taken. */
bool resolve_subscribe(void (*done)(void));
/* With always, READY also for a list of addresses and socket directories alone (server.c keeps
 * the list to skip hosts of on a per-host timeout). */
enum resolve_status resolve_conninfo(const char *conninfo, bool always, struct resolve_lists *out, char *err,
                                     size_t errlen) __attribute__((warn_unused_result));
void resolve_lists_free(struct resolve_lists *l);
/* Appends l's host, hostaddr and (when there is one) port to libpq's keyword and value arrays at
 * n, which must have room for three more; returns the new count. Nothing when l->host is NULL. */
size_t resolve_lists_params(const struct resolve_lists *l, const char **keys, const char **vals, size_t n);
/* A copy of from into to (false: out of memory, to empty). */
bool resolve_lists_copy(const struct resolve_lists *from, struct resolve_lists *to)
    __attribute__((warn_unused_result));
/* Entries in the lists. */
size_t resolve_lists_count(const struct resolve_lists *l);
/* Which entry is (host, port, hostaddr) as libpq reports its current one (PQhost, PQport,
 * PQhostaddr, any may be NULL), from entry from on; -1 when none is. */
long resolve_lists_find(const struct resolve_lists *l, size_t from, const char *host, const char *port,
                        const char *hostaddr);
/* Drops the first n entries of each list (false: out of memory, or fewer entries). */
bool resolve_lists_drop(struct resolve_lists *l, size_t n) __attribute__((warn_unused_result));

/* The pure part, for tests: expands host and port lists with lookup() answers (a comma-separated
 * list of numeric addresses, or NULL with *err set when the name did not resolve; NULL too while
 * pending, with *pending set). */
enum resolve_status
resolve_expand(const char *host, const char *port, bool always,
               const char *(*lookup)(const char *name, bool *pending, const char **err, void *arg), void *arg,
               struct resolve_lists *out, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Whether libpq would look a host entry up (not empty, not a socket directory, not an address). */
bool resolve_is_name(const char *entry);

#endif
