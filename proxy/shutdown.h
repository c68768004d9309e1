/* Stopping pgmesh, for SIGTERM/SIGINT and the admin console's SHUTDOWN: gracefully (stop
 * accepting, let transactions in progress finish within shutdown_timeout, end clients at their
 * transaction boundaries, stop when none is left) or at once. */
#ifndef PGMESH_PROXY_SHUTDOWN_H
#define PGMESH_PROXY_SHUTDOWN_H

/* Graceful; cause ("received signal 15", "SHUTDOWN WAIT from the admin console") goes to the log.
 * Called while a graceful shutdown runs, it stops at once. */
void shutdown_begin(const char *cause);
/* Stops the loop after this iteration, whatever is open. */
void shutdown_now(const char *cause);

#endif
