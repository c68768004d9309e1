/* The admin console: a client that connects with dbname=pgmesh is not routed to a database;
 * pgmesh answers it (SHOW ..., RELOAD, PAUSE, RESUME, KILL_CLIENT, SHUTDOWN) over the simple and
 * the extended protocol. Who may: a verified token whose role admin_roles lists, or over the Unix
 * socket an OS user admin_users lists (SO_PEERCRED, no token). client.c hands such a client here
 * at startup and after its token; it stays CLIENT_IDLE and never gets a pool or a server. */
#ifndef PGMESH_PROXY_ADMIN_H
#define PGMESH_PROXY_ADMIN_H

#include <stdbool.h>

#define ADMIN_DATABASE "pgmesh"

struct client;
struct admin_session;

/* Whether a startup packet's database names the console. */
bool admin_database(const char *name);
/* Makes c a console client (c->admin). False when memory runs out: c got a FATAL. */
bool admin_begin(struct client *c) __attribute__((warn_unused_result));
/* A Unix-socket client whose OS user admin_users lists is logged in at once: true. False: the
 * client must show a token, as any other. */
bool admin_peer_login(struct client *c) __attribute__((warn_unused_result));
/* After the token was verified (c->ident filled): logs the client in when its role is in
 * admin_roles, else FATAL 28000. */
void admin_token_login(struct client *c, const char *sub);
/* What a logged-in console client sent: commands are answered in order. */
void admin_input(struct client *c);
/* With the client (client.c); NULL is fine. */
void admin_session_free(struct admin_session *a);

#endif
