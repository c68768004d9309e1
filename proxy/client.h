/* Client connections: startup packet, cleartext-password authentication with a JWT, then the
 * relay. Owner: rt.clients; freed after client_close's loop iteration. */
#ifndef PGMESH_PROXY_CLIENT_H
#define PGMESH_PROXY_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "auth/jwt.h"
#include "proxy/conn.h"
#include "proxy/limits.h"
#include "proxy/log.h"
#include "proxy/params.h"
#include "proxy/relay.h"
#include "proxy/stats.h"
#include "proxy/stmt.h"
#include "proxy/txstart.h"

struct admin_session;
struct pool;
struct role_config;
struct server;

enum client_state {
    CLIENT_STARTUP,       /* waiting for the startup packet (or SSLRequest, CancelRequest) */
    CLIENT_TLS_HANDSHAKE, /* answered 'S' to an SSLRequest; SSL_accept in progress */
    CLIENT_AUTH,          /* waiting for the password message carrying the token */
    CLIENT_IDLE,          /* authenticated, no server */
    CLIENT_WAIT_SERVER,   /* queued in its pool */
    CLIENT_LINKED,
    CLIENT_CLOSING,
};

#define CLIENT_NAME_MAX 64

/* What a TCP client may send before its startup packet, decided at accept from proxy_protocol and
 * proxy_protocol_trusted (proxyhdr.h); OFF once its first bytes are dealt with. */
enum client_proxy {
    CLIENT_PROXY_OFF,       /* no PROXY header expected: Unix socket, proxy_protocol off, or done */
    CLIENT_PROXY_UNTRUSTED, /* a header would be refused */
    CLIENT_PROXY_TRUSTED,   /* a header, if any, names the client */
};

/* What the session needs of its verified token: sub and exp only go to the login log line. */
struct client_ident {
    /* Interned (names.h), at most JWT_CLAIM_MAX bytes; names_empty before login. */
    const char *tenant;
    const char *role;
    char *claims_json; /* owned; NULL unless the policy asked for it */
};

struct client {
    struct conn conn;
    uint64_t id;
    char *tag; /* "C-<id> db/tenant@addr" for logs; sized to need, as are the names below */
    enum client_state state;
    TAILQ_ENTRY(client) link;      /* rt.clients */
    TAILQ_ENTRY(client) wait_link; /* pool->waiting */
    unsigned passed_over;          /* ... times a later waiter got a server first (link.c) */
    struct metrics_role *mrole;    /* its role's histograms (metrics.h), from login on */
    ev_timer timer;                /* startup/auth deadline, then query_wait_timeout */
    struct pool *pool;
    struct server *server;
    bool is_unix;
    bool over_limit;     /* accepted beyond max_client_conn: refuse after startup */
    bool login_counted;  /* in workers.c's per-tenant and per-role counts: given back at the end */
    unsigned char proxy; /* enum client_proxy, in the padding before addr */
    char *addr;
    char *user;             /* the startup packet's (at most CLIENT_NAME_MAX bytes); NULL before it */
    char *database;         /* at most CLIENT_NAME_MAX bytes; NULL before the startup packet */
    char *application_name; /* the startup value (at most CLIENT_NAME_MAX bytes); NULL: none */
    struct client_ident ident;
    struct role_limits limits;
    struct param_set params;  /* session parameters the client wants on its server */
    struct cstmt_table stmts; /* its named prepared statements (transaction pooling) */
    uint32_t cancel_key;
    const struct txstart *tx; /* shared with clients that start transactions alike (txshare.c) */
    struct body_stream body;  /* the client message being streamed to the server */
    bool reapply_settings;    /* session pooling: set the claims again after this Query or Sync */
    /* Session pooling, extended protocol: a statement that resets every setting (DISCARD ALL,
     * RESET ALL) may run at an Execute; the Sync that ends its batch is followed by the claims. */
    bool unnamed_resets; /* the unnamed statement is one */
    bool named_resets;   /* some named statement was one (kept: the name is not followed) */
    bool reapply_at_sync;
    struct stats_session st;     /* its counts (stats.h) */
    double connect_time;         /* loop time of the accept */
    struct admin_session *admin; /* owned; non-NULL for a client of the admin console (admin.h) */
};

/* The admin console (admin.c) installs these at start (admin_init), so that client.c hands it the
 * clients that ask for it without calling into it: calls run from the console to clients. All
 * NULL: there is no console, and dbname=pgmesh is a database name like any other. */
struct client_console {
    bool (*wants)(const char *database);
    /* At startup: makes c a console client (c->admin); false when c got a FATAL. */
    bool (*begin)(struct client *c);
    /* At startup, over the Unix socket: true when c is logged in by its OS user. */
    bool (*peer_login)(struct client *c);
    /* After the token was verified: logs c in, or ends it (FATAL 28000). */
    void (*token_login)(struct client *c, const char *sub);
    /* Input of a logged-in console client. */
    void (*input)(struct client *c);
    void (*session_free)(struct admin_session *a);
};
extern struct client_console client_console;

void client_accept(int fd, bool is_unix, const char *addr, enum client_proxy proxy);
/* Every state change: moves the client in and out of its pool's wait queue, with its timers;
 * asserts the transition is legal. */
void client_set_state(struct client *c, enum client_state st);
/* Sends an ErrorResponse; FATAL ones close the connection after it is written. */
void client_error(struct client *c, const char *severity, const char *sqlstate, const char *message,
                  const char *detail, const char *hint);
void client_close(struct client *c, const char *why);
struct client *client_find_by_pid(uint32_t pid);
/* The client as log lines name it: views into c, valid while c is. */
struct log_who client_who(const struct client *c);

/* A line about client c (event and fields as for log_event), and an audit line (log_audit):
 * what pgmesh refused or ended on the client's behalf. */
#define CLIENT_LOG(level, c, event, fields, ...)                                                                  \
    do {                                                                                                          \
        if ((level) <= log_min_level) {                                                                           \
            struct log_who who_ = client_who(c);                                                                  \
            log_event((level), &who_, (event), (fields), __VA_ARGS__);                                            \
        }                                                                                                         \
    } while (0)
#define CLIENT_AUDIT(level, c, event, fields, ...)                                                                \
    do {                                                                                                          \
        struct log_who who_ = client_who(c);                                                                      \
        log_audit((level), &who_, (event), (fields), __VA_ARGS__);                                                \
    } while (0)
/* Builds the client's transaction start and limits from its role (at login, and again when a
 * reload changes the role); the old ones stay when memory runs out (false). */
bool client_apply_role(struct client *c, const struct role_config *role) __attribute__((warn_unused_result));
/* Sets the client's tenant and role (interned); false when memory runs out (nothing changed). */
bool client_set_names(struct client *c, const char *tenant, const char *role) __attribute__((warn_unused_result));

#endif
