/* The relay between a linked client and server, and what it keeps per server connection: the
 * queue of expected replies, message bodies in flight, the claims and session state the server
 * holds. It moves bytes and returns a verdict; it never closes either side, links or unlinks:
 * proxy/link.c acts on the verdict. Parts: relay.c (client to server), replies.c (server to
 * client), relay_core.c (the state, sending, streaming, the transaction start), prepared.c (named
 * statements in transaction pooling), refusal.c (what pgmesh refuses). */
#ifndef PGMESH_PROXY_RELAY_H
#define PGMESH_PROXY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/opq.h"
#include "proxy/params.h"
#include "proxy/stmt.h"
#include "proxy/txstart.h"

struct client;
struct server;

/* What the caller must do after a relay call. */
enum relay_verdict {
    RELAY_GO_ON,        /* nothing: wait for more bytes */
    RELAY_TX_OVER,      /* the server is clean and idle: give it back (or, resetting, to its pool) */
    RELAY_CLOSE_CLIENT, /* end the client (with relay.fatal when it has a message) */
    RELAY_CLOSE_SERVER, /* close the server (relay.why says why); its client loses it (with
                         * relay.fatal when it has a message) */
};

/* A FATAL error for the client that goes with RELAY_CLOSE_CLIENT or RELAY_CLOSE_SERVER. Static
 * strings or relay-owned. */
struct relay_fatal {
    const char *sqlstate; /* NULL: close without a message (a lost server: the generic one) */
    const char *message;
    const char *detail;
    const char *hint;
};

/* Bytes of the message in flight that have not arrived yet, and whether they are dropped. */
struct body_stream {
    uint32_t remaining;
    bool drop;
};

/* Per server connection; embedded in struct server. All-zero plus relay_init is the state of a
 * fresh connection; relay_destroy frees. */
struct relay {
    struct opq ops;
    struct body_stream body;       /* the server message being streamed to the client */
    char tx_status;                /* from the last ReadyForQuery */
    bool per_transaction;          /* transaction pooling: claims per transaction, link ends with it */
    bool enforced;                 /* the database has the pgmesh extension: claims through pgmesh.apply */
    char nonce[33];                /* ... this backend's nonce (enforce.h), which binds each message to it */
    uint64_t apply_counter;        /* ... the last counter sent: each message's must be higher */
    bool apply_parsed;             /* ... pgmesh_apply is prepared on this connection (transaction pooling) */
    uint32_t switch_oid;           /* ... pgmesh.switch's OID (0: the extension is 1.0) */
    const struct txstart *applied; /* ... the transaction start (shared, one reference held)
                                    * whose settings its last apply committed; NULL: not known
                                    * (relay_forget_applied) */
    bool at_boundary;              /* next client message may start a transaction */
    bool open_extended;            /* client extended messages sent since the last Sync */
    bool in_copy;
    bool skipping;          /* an extended message failed: the server skips to Sync */
    bool session_dirty;     /* a client statement may have left session state: DISCARD ALL
                             * before another client runs here */
    uint64_t claims_owner;  /* client whose claims may be committed here; 0: none */
    char claims_tenant[65]; /* ... and those claims ("" when none) */
    char claims_role[65];
    char application_name[65]; /* as pgmesh last set it ("" when unknown) */
    struct param_set have;     /* session parameters as the linked clients left them */
    uint64_t batch;            /* counts Syncs and Queries sent: statements used in the
                                * current one are not evicted */
    struct sstmt_set stmts;    /* server-side prepared statements (transaction pooling) */
    bool stmts_lost;           /* ... the server lacks one of them (26000): DEALLOCATE ALL and
                                * forget them at the next transaction start */
    /* The verdict of the relay call in progress (the first failure wins). */
    enum relay_verdict verdict;
    const char *why;
    struct relay_fatal fatal;
    struct txstart_failure failure; /* the texts fatal points to when a transaction start failed */
};

void relay_init(struct relay *r);
void relay_destroy(struct relay *r);
/* Something may have changed the settings the server holds: the next transaction start sends them. */
void relay_forget_applied(struct relay *r);
/* Whether the server's last committed apply set what tx sets. */
bool relay_holds_applied(const struct relay *r, const struct txstart *tx);
/* Whether the claims last set on the connection are this tenant's and role's. */
bool relay_holds_claims(const struct relay *r, const char *tenant, const char *role);

/* Starts a link: the server is clean and idle. Session pooling sets the claims here. */
enum relay_verdict relay_begin(struct client *c, struct server *s) __attribute__((warn_unused_result));
/* Client bytes arrived (or were waiting) while linked. */
enum relay_verdict relay_from_client(struct client *c, struct server *s) __attribute__((warn_unused_result));
/* Server bytes arrived while linked or resetting (replies.c). */
enum relay_verdict replies_from_server(struct server *s) __attribute__((warn_unused_result));
/* The linked client went away (already unlinked): queue the reset that makes the server fit to
 * lend again, or say it must close. */
enum relay_verdict relay_client_gone(struct server *s, uint32_t client_body_remaining)
    __attribute__((warn_unused_result));
/* RELAY_TX_OVER when the server can go back: settled, and its client (if linked in transaction
 * pooling) is not in the middle of a message; else RELAY_GO_ON. */
enum relay_verdict relay_settle(struct server *s);

#endif
