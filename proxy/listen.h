/* TCP and Unix-socket listeners. Accepted sockets become clients, of this worker or of the one
 * workers_place names. */
#ifndef PGMESH_PROXY_LISTEN_H
#define PGMESH_PROXY_LISTEN_H

#include <stdbool.h>

/* Opens what the config asks for, one TCP socket per worker; false (with a logged reason) if any
 * fails. Before the loop and before the workers are forked. */
bool listen_open(void) __attribute__((warn_unused_result));
/* In a worker: closes the other workers' TCP sockets. */
void listen_keep_worker(int worker);
/* A connection another worker accepted for this one (workers_place): it becomes a client here. */
void listen_adopt(int fd, bool is_unix, const char *addr, int proxy);
/* Accepts on what is left, on rt.loop. */
void listen_start(void);
void listen_stop(void);
/* The supervisor at exit: closes every socket and removes the Unix socket file. */
void listen_close_all(void);

#endif
