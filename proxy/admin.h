/* The admin console: a client that connects with dbname=pgmesh is not routed to a database;
 * pgmesh answers it (SHOW ..., RELOAD, PAUSE, RESUME, KILL_CLIENT, SHUTDOWN) over the simple and
 * the extended protocol. Who may: a verified token whose role admin_roles lists, or over the Unix
 * socket an OS user admin_users lists (SO_PEERCRED, no token). client.c hands such a client here
 * (through client_console) at startup and after its token; it stays CLIENT_IDLE and never gets a
 * pool or a server. */
#ifndef PGMESH_PROXY_ADMIN_H
#define PGMESH_PROXY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#define ADMIN_DATABASE "pgmesh"

struct client;
struct admin_session;

/* Installs the console's entry points in client_console (client.h): client.c hands it a client
 * whose startup packet names ADMIN_DATABASE (logged in at once when it is a Unix-socket peer that
 * admin_users lists), then after its token (admitted when admin_roles lists its role, else FATAL
 * 28000), then its input; and frees its session with it. */
void admin_init(void);

/* With workers: the console's answer to another worker's gather ('S' a SHOW's rows, 'L' whether
 * the pools are idle, 'K' KILL_CLIENT), and its action on another's ('P' PAUSE, 'R' RESUME). */
char *admin_answer(char kind, const char *arg, size_t *len);
void admin_act(char kind, const char *arg);

#endif
