/* Messages between worker processes (workers = N), over each worker's inbox (workers.h): a cancel
 * request for a client of another worker; a connection accepted by one worker for another to
 * serve (workers_place); an action the admin console took in one worker that
 * the others must take too (PAUSE, RESUME, KILL_CLIENT); and a gather, in which one worker asks
 * every other for its part of a SHOW or of /metrics and waits for the answers, serving the
 * others' requests meanwhile so that two workers gathering at once do not wait on each other.
 * A gather blocks the asking worker's loop for as long as the slowest answer (bounded): it is
 * for the admin console and the metrics endpoint, never for clients' traffic. */
#ifndef PGMESH_PROXY_WORKMSG_H
#define PGMESH_PROXY_WORKMSG_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/workers.h"

#define WORKMSG_ARG_MAX 64

/* What a worker answers a gather with (malloc'd, *len bytes; NULL: nothing), and what it does on
 * another worker's action. Set once before workmsg_start. */
struct workmsg_handlers {
    char *(*answer)(char kind, const char *arg, size_t *len);
    void (*act)(char kind, const char *arg);
    void (*adopt)(int fd, bool is_unix, const char *addr, int proxy);
};

void workmsg_start(struct ev_loop *loop, const struct workmsg_handlers *h);

/* Passes a CancelRequest on to the worker its pid names; false when that is this one. */
bool workmsg_forward_cancel(uint32_t pid, uint32_t key);

/* Passes a just-accepted connection (nothing read from it yet) to worker w, which runs
 * adopt(fd, is_unix, addr, proxy) on its copy; false (this process keeps fd) when it could not. */
bool workmsg_pass_client(int w, int fd, bool is_unix, const char *addr, int proxy);

/* Has every other worker run act(kind, arg); to worker `only` alone when it is >= 0. */
void workmsg_tell(char kind, const char *arg, int only);

/* Every other worker's answer to (kind, arg): out[i] malloc'd with len[i] bytes, NULL for this
 * worker and for one that did not answer within the time limit. The caller frees them. */
void workmsg_gather(char kind, const char *arg, char *out[WORKERS_MAX], size_t len[WORKERS_MAX]);

#endif
