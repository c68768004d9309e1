/* The process-wide state of the proxy: the loop, the loaded config and keys, the client list and
 * the pools. One instance, owned by main.c; everything else reaches it through `rt`. */
#ifndef PGMESH_PROXY_RUNTIME_H
#define PGMESH_PROXY_RUNTIME_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "protocol/frame.h"

struct client;
struct pool;
struct config;
struct jwt_keys;
struct jwt_cache;

TAILQ_HEAD(client_list, client);
TAILQ_HEAD(pool_list, pool);

struct runtime {
    struct ev_loop *loop;
    struct config *cfg;
    struct jwt_keys *keys;
    struct jwt_cache *token_cache; /* NULL when verify_cache_size = 0 */
    struct frame_limits limits;
    struct client_list clients;
    int nclients;
    struct pool_list pools;
    uint64_t next_client_id, next_server_id;
    bool debug_forced;  /* -v: debug logging whatever log_level says, across reloads */
    double started_at;  /* loop time at start (SHOW STATS' per-second averages) */
    bool paused_all;    /* the admin console's PAUSE without a database: new pools start paused */
    bool shutting_down; /* SIGTERM/SIGINT: not accepting; each client leaves at its next transaction
                         * boundary (link.c), the process when none is left or shutdown_timeout ends */
};

extern struct runtime rt;

#endif
