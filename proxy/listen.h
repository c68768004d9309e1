/* TCP and Unix-socket listeners. Accepted sockets become clients. */
#ifndef PGMESH_PROXY_LISTEN_H
#define PGMESH_PROXY_LISTEN_H

#include <stdbool.h>

/* Opens what the config asks for; false (with a logged reason) if any fails. */
bool listen_start(void) __attribute__((warn_unused_result));
void listen_stop(void);

#endif
