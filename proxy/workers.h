/* workers = N: N processes, each its own libev loop, clients and pools, forked by a supervisor
 * that holds the listening sockets (one SO_REUSEPORT TCP socket per worker; the Unix socket
 * shared), forwards SIGHUP and SIGTERM and starts a worker again if one dies. What must hold
 * across workers lives in one shared mapping made before the fork: the client counts behind
 * max_client_conn and workers_place, and the per-tenant and per-role login counts. A cancel
 * request names its worker (and its instance, see peers.h) in the pid of the backend key: a
 * worker that receives another's passes the packet on through a datagram socket pair.
 * With workers = 1 there is no supervisor: the process is the one worker, as before. */
#ifndef PGMESH_PROXY_WORKERS_H
#define PGMESH_PROXY_WORKERS_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#define WORKERS_MAX 16

/* Which worker this process is (0 when there is one) and how many there are. */
extern int worker_index;
extern int worker_count;

/* Before the fork: the shared counts and the cancel socket pairs for count workers. */
bool workers_prepare(int count, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Forks the workers and supervises them until they have all ended after SIGTERM/SIGINT; returns
 * in each worker (true) with worker_index set, or in the supervisor (false) when it is time to
 * exit, with the exit status in *exit_code (1 when a worker failed at start). child_setup runs in
 * every new worker before it returns (closing the other workers' listeners). */
bool workers_run(void (*child_setup)(void), int *exit_code);

/* The admin console's RELOAD (shutdown false) or SHUTDOWN, done in this worker: the supervisor
 * has the other workers do it too (SIGHUP; SIGTERM, which lets transactions finish). */
void workers_tell_others(bool shutdown);

/* A worker's inbox, a datagram socket pair made before the fork (workmsg.c speaks over it): the
 * end that worker reads, or the end the others write to. */
int workers_inbox_fd(int worker, bool reading);

/* The backend key's pid for a client id: the instance (peer_id), the worker and the id's low
 * bits. A client id's low bits repeat after 2^20 logins, which is why a cancel must match the
 * whole key, not the pid alone. */
uint32_t workers_cancel_pid(uint64_t client_id);
int workers_pid_peer(uint32_t pid);
int workers_pid_worker(uint32_t pid);

/* Clients across all workers, for max_client_conn. */
int workers_clients_add(int delta);

/* Worker w's share of size (a pool's size split between the workers), at least 1. */
int workers_share(int size, int w);

/* Which worker takes a new connection. At low load one worker doing all the work wakes once for
 * what two would each wake for, so the workers fill in order: the first whose clients (and
 * connections passed to it, not yet taken in) are fewer than its share of fill_size; when every
 * one has its share, the least loaded, this one on a tie. A connection for another worker is
 * counted as passed to it until it calls workers_placed_done(its index) (or the passing failed
 * and the passer calls workers_placed_done(that index)). */
int workers_place(int fill_size);
void workers_placed_done(int w);

/* Per-tenant and per-role login counts across workers. workers_login_take counts a login in if
 * neither limit (0: none) is reached, and says which was otherwise (and its count); every taken
 * login is given back with workers_login_give when the client ends. */
enum login_take { LOGIN_TAKEN, LOGIN_TENANT_FULL, LOGIN_ROLE_FULL };
enum login_take workers_login_take(const char *tenant, const char *role, int tenant_max, int role_max, int *count);
void workers_login_give(const char *tenant, const char *role);

#endif
