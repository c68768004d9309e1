/* Client state machine up to the relay: startup packet, SSLRequest (TLS handshake when offered,
 * else refusal), GSSENC refusal, clear text refused under client_tls = require, cancel requests,
 * cleartext-password authentication whose password is a JWT, then the synthesized startup
 * replies (AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery) without waiting for
 * a server. Every refusal is a PostgreSQL ErrorResponse with the right SQLSTATE. */
#include "proxy/client.h"

#include <assert.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/cache.h"
#include "policy/guard.h"
#include "protocol/be.h"
#include "protocol/error.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "protocol/sqlstate.h"
#include "protocol/startup.h"
#include "protocol/wire.h"
#include "proxy/cancel.h"
#include "proxy/config.h"
#include "proxy/link.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/names.h"
#include "proxy/peers.h"
#include "proxy/pool.h"
#include "proxy/proxyhdr.h"
#include "proxy/runtime.h"
#include "proxy/server.h"
#include "proxy/tls.h"
#include "proxy/txshare.h"
#include "proxy/workers.h"

#define clog(level, c, event, ...) CLIENT_LOG(level, c, event, NULL, __VA_ARGS__)

struct client_console client_console;

/* A client has this long to finish startup and authentication. */

static const char *const state_names[] = {"startup",     "tls_handshake", "auth",   "idle",
                                          "wait_server", "linked",        "closing"};

/* Which states each state may move to. */
static const unsigned legal_next[] = {
    [CLIENT_STARTUP] = 1u << CLIENT_TLS_HANDSHAKE | 1u << CLIENT_AUTH | 1u << CLIENT_CLOSING,
    [CLIENT_TLS_HANDSHAKE] = 1u << CLIENT_STARTUP | 1u << CLIENT_CLOSING,
    [CLIENT_AUTH] = 1u << CLIENT_IDLE | 1u << CLIENT_CLOSING,
    [CLIENT_IDLE] = 1u << CLIENT_WAIT_SERVER | 1u << CLIENT_LINKED | 1u << CLIENT_CLOSING,
    [CLIENT_WAIT_SERVER] = 1u << CLIENT_LINKED | 1u << CLIENT_CLOSING,
    [CLIENT_LINKED] = 1u << CLIENT_IDLE | 1u << CLIENT_CLOSING,
    [CLIENT_CLOSING] = 0,
};

/* Entering and leaving WAIT_SERVER moves the client in and out of its pool's wait queue, with the
 * query_wait_timeout timer. */
static void wait_queue(struct client *c, bool enter)
{
    struct pool *p = c->pool;
    ev_timer_stop(rt.loop, &c->timer);
    if (!enter) {
        TAILQ_REMOVE(&p->waiting, c, wait_link);
        p->nwaiting--;
        stats_wait_end(&c->st, ev_now(rt.loop));
        return;
    }
    TAILQ_INSERT_TAIL(&p->waiting, c, wait_link);
    stats_wait_begin(&c->st, ev_now(rt.loop));
    c->passed_over = 0;
    p->nwaiting++;
    if (rt.cfg->query_wait_timeout_ms > 0) {
        ev_timer_set(&c->timer, (double)rt.cfg->query_wait_timeout_ms / 1000.0, 0.);
        ev_timer_start(rt.loop, &c->timer);
    }
}

void client_set_state(struct client *c, enum client_state st)
{
    if (c->state == st && st == CLIENT_CLOSING)
        return; /* terminal */
    assert(legal_next[c->state] & (1u << st));
    clog(LOG_DEBUG, c, "client_state", "%s -> %s", state_names[c->state], state_names[st]);
    if (c->state == CLIENT_WAIT_SERVER || st == CLIENT_WAIT_SERVER)
        wait_queue(c, st == CLIENT_WAIT_SERVER);
    if (st == CLIENT_CLOSING)
        ev_timer_stop(rt.loop, &c->timer);
    c->state = st;
}

static void send_or_close(struct client *c, const struct pq_writer *w)
{
    if (!wr_ok(w) || !conn_send(&c->conn, w->p, w->len))
        client_close(c, "out of memory");
}

/* Gives the server back (the link decides how clean it is) or leaves the wait queue. */
static void detach(struct client *c)
{
    link_client_gone(c);
    client_set_state(c, CLIENT_CLOSING);
}

/* A FATAL error before the client was admitted is a refused login, an audit line, unless the
 * caller names another event (a login timeout: the client presented nothing to refuse). */
static void log_client_error(const struct client *c, bool fatal, const char *event, const struct pq_error *e)
{
    bool refused = !event && fatal && c->state <= CLIENT_AUTH;
    const struct log_field *fields =
        LOG_FIELDS(LOG_STR("severity", e->severity), LOG_STR("sqlstate", e->sqlstate));
    const char *sep = e->detail ? " - " : "", *detail = e->detail ? e->detail : "";
    if (refused) {
        CLIENT_AUDIT(LOG_WARNING, c, "login_refused", fields, "%s %s: %s%s%s", e->severity, e->sqlstate,
                     e->message, sep, detail);
        return;
    }
    if (!event)
        event = fatal ? "client_terminated" : "client_error";
    CLIENT_LOG(fatal ? LOG_WARNING : LOG_INFO, c, event, fields, "%s %s: %s%s%s", e->severity, e->sqlstate,
               e->message, sep, detail);
}

/* client_error, logged as event (NULL: by what the error is). */
static void send_error(struct client *c, const char *event, const struct pq_error *e)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    error_write(&w, BE_ERROR, e);
    bool fatal = strcmp(e->severity, "FATAL") == 0;
    log_client_error(c, fatal, event, e);
    if (c->state != CLIENT_CLOSING && (!wr_ok(&w) || !conn_send(&c->conn, w.p, w.len)))
        fatal = true;
    wr_destroy(&w);
    if (fatal && c->state != CLIENT_CLOSING) {
        detach(c);
        conn_close_after_flush(&c->conn);
    }
}

void client_error(struct client *c, const char *severity, const char *sqlstate, const char *message,
                  const char *detail, const char *hint)
{
    struct pq_error e = {severity, sqlstate, message, detail, hint};
    send_error(c, NULL, &e);
}

void client_close(struct client *c, const char *why)
{
    if (c->conn.closing)
        return;
    clog(LOG_DEBUG, c, "client_closed", "closing: %s", why);
    detach(c);
    conn_close(&c->conn);
}

static void client_on_release(struct conn *conn)
{
    struct client *c = container_of(conn, struct client, conn);
    ev_timer_stop(rt.loop, &c->timer);
    TAILQ_REMOVE(&rt.clients, c, link);
    rt.nclients--;
    workers_clients_add(-1);
    if (c->login_counted)
        workers_login_give(c->ident.tenant, c->ident.role);
    stats_session_logout(&c->st, c->conn.bytes_in, c->conn.bytes_out);
    if (c->admin)
        client_console.session_free(c->admin);
    conn_close_fd(&c->conn);
    conn_destroy(&c->conn);
    txshare_put(c->tx);
    params_clear(&c->params);
    cstmt_table_clear(&c->stmts);
    free(c->ident.claims_json);
    names_put(c->ident.tenant);
    names_put(c->ident.role);
    free(c->tag);
    free(c->addr);
    free(c->user);
    free(c->database);
    free(c->application_name);
    free(c);
}

struct log_who client_who(const struct client *c)
{
    /* The startup user name is the client's word only: once the token is verified, its tenant
     * and role say who it is. */
    bool verified = c->ident.role[0] != '\0';
    return (struct log_who){.tag = c->tag,
                            .kind = 'C',
                            .id = c->id,
                            .client_id = c->id,
                            .database = c->database,
                            .tenant = c->ident.tenant,
                            .role = c->ident.role,
                            .user = verified ? NULL : c->user,
                            .addr = c->addr};
}

struct client *client_find_by_pid(uint32_t pid)
{
    struct client *c;
    TAILQ_FOREACH(c, &rt.clients, link) {
        if (workers_cancel_pid(c->id) == pid && c->state != CLIENT_CLOSING)
            return c;
    }
    return NULL;
}

/* A startup value cut to CLIENT_NAME_MAX bytes, malloc'd; NULL when absent or empty (or when
 * memory runs out: the caller treats that as absent). */
static char *copy_name(const struct span *v)
{
    size_t n = v ? v->len : 0;
    if (n > CLIENT_NAME_MAX)
        n = CLIENT_NAME_MAX;
    return n ? strndup((const char *)v->p, n) : NULL;
}

/* The log tag; on memory exhaustion the old one stays (it names the client all the same). */
static void set_tag(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_tag(struct client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *t;
    int n = vasprintf(&t, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    free(c->tag);
    c->tag = t;
}

static void protocol_violation(struct client *c, const char *what)
{
    const uint8_t *h = iobuf_head(&c->conn.in);
    size_t n = iobuf_len(&c->conn.in);
    clog(LOG_WARNING, c, "protocol_violation", "protocol violation: %s (first bytes %02x %02x %02x %02x %02x)",
         what, n > 0 ? h[0] : 0, n > 1 ? h[1] : 0, n > 2 ? h[2] : 0, n > 3 ? h[3] : 0, n > 4 ? h[4] : 0);
    client_error(c, "FATAL", SQLSTATE_PROTOCOL_VIOLATION, what, NULL, NULL);
}

static void start_auth(struct client *c, const struct startup_packet *pkt)
{
    const struct span *user = startup_get(pkt, "user"), *db = startup_get(pkt, "database");
    free(c->database);
    free(c->application_name);
    free(c->user);
    c->user = copy_name(user);
    c->database = copy_name(db && db->len ? db : user);
    c->application_name = copy_name(startup_get(pkt, "application_name"));
    set_tag(c, "C-%llu %s/%.*s@%s", (unsigned long long)c->id, c->database ? c->database : "",
            user ? (int)(user->len < CLIENT_NAME_MAX ? user->len : CLIENT_NAME_MAX) : 0,
            user ? (const char *)user->p : "", c->addr);
    if (c->over_limit) {
        char detail[128];
        snprintf(detail, sizeof detail, "max_client_conn is %d.", rt.cfg->max_client_conn);
        client_error(c, "FATAL", SQLSTATE_TOO_MANY_CONNECTIONS, "too many client connections", detail,
                     "Try again later, or raise max_client_conn.");
        return;
    }
    /* Startup parameters may not preset what pgmesh manages or any role pins (PGOPTIONS="-c
     * role=..."): the token, and so the role, is not known yet. */
    const struct guard_options gopt = {.pinned = rt.cfg->pinned, .npinned = rt.cfg->npinned};
    for (size_t i = 0; i < pkt->nparams; i++) {
        const char *name = (const char *)pkt->params[i].name.p, *value = (const char *)pkt->params[i].value.p;
        if (!guard_check_startup_option(name, value, &gopt)) {
            char msg[200];
            snprintf(msg, sizeof msg, "startup parameter \"%.64s\" sets a setting managed by pgmesh", name);
            client_error(c, "FATAL", SQLSTATE_INSUFFICIENT_PRIVILEGE, msg,
                         "pgmesh sets request.jwt.*, role, statement_timeout, work_mem and the settings pinned "
                         "in [roles] itself.",
                         "Remove it from the connection options (PGOPTIONS).");
            return;
        }
    }
    if (!params_from_startup(&c->params, pkt)) {
        client_error(c, "FATAL", SQLSTATE_PROTOCOL_VIOLATION, "invalid startup parameter value", NULL, NULL);
        return;
    }
    if (c->database && client_console.wants && client_console.wants(c->database)) {
        if (!client_console.begin(c) || (c->is_unix && client_console.peer_login(c)))
            return;
    } else if (!c->database || !config_find_database(rt.cfg, c->database)) {
        char msg[160];
        snprintf(msg, sizeof msg, "database \"%s\" does not exist", c->database ? c->database : "");
        client_error(c, "FATAL", SQLSTATE_INVALID_CATALOG_NAME, msg,
                     "pgmesh has no [databases] entry of that name.", NULL);
        return;
    }
    struct pq_writer w;
    uint8_t buf[16];
    wr_init_fixed(&w, buf, sizeof buf);
    be_write_auth(&w, AUTH_CLEARTEXT_PASSWORD);
    send_or_close(c, &w);
    client_set_state(c, CLIENT_AUTH);
}

/* 'S' and a TLS handshake when TLS is offered to this client, else 'N': the client goes on in
 * clear text, or gives up as sslmode=require does. */
static void handle_ssl_request(struct client *c)
{
    if (c->conn.ssl) {
        protocol_violation(c, "SSLRequest inside a TLS session");
        return;
    }
    if (c->is_unix || rt.cfg->client_tls == CLIENT_TLS_DISABLE || !tls_available()) {
        if (!conn_send(&c->conn, "N", 1))
            client_close(c, "out of memory");
        return;
    }
    /* The client must wait for 'S' before its handshake: anything after the request was sent in
     * clear text and would be mistaken for TLS. PostgreSQL refuses it too. */
    if (iobuf_len(&c->conn.in) > 0) {
        protocol_violation(c, "received unencrypted data after SSL request");
        return;
    }
    SSL *ssl = tls_session_new(c->conn.fd);
    if (!ssl) {
        client_close(c, "out of memory for a TLS session");
        return;
    }
    if (!conn_tls_begin(&c->conn, ssl, "S", 1)) {
        client_close(c, "could not answer the SSLRequest");
        return;
    }
    client_set_state(c, CLIENT_TLS_HANDSHAKE);
}

/* Driven by both readability and writability until SSL_accept finishes; the login timer bounds it. */
static void handle_tls_handshake(struct client *c)
{
    char why[256] = "";
    enum io_result r = conn_tls_accept(&c->conn, why, sizeof why);
    if (r == IO_AGAIN)
        return;
    if (r != IO_OK) {
        clog(LOG_INFO, c, "tls_handshake_failed", "TLS handshake failed: %s", why);
        client_close(c, "TLS handshake failed");
        return;
    }
    if (LOG_DEBUG <= log_min_level) {
        char desc[128];
        tls_describe(c->conn.ssl, desc, sizeof desc);
        clog(LOG_DEBUG, c, "tls_established", "TLS established: %s", desc);
    }
    client_set_state(c, CLIENT_STARTUP);
}

/* Refused before AuthenticationCleartextPassword, so the token is never sent in clear. */
static void handle_startup_message(struct client *c, const struct startup_packet *pkt)
{
    if (!c->is_unix && !c->conn.ssl && rt.cfg->client_tls == CLIENT_TLS_REQUIRE) {
        metrics_login_refused("tls_required");
        client_error(c, "FATAL", SQLSTATE_INVALID_AUTHORIZATION, "TLS is required",
                     "pgmesh accepts TCP clients only over TLS (client_tls = require), so that tokens never "
                     "cross the network in clear text.",
                     "Connect with sslmode=require (or verify-full).");
        return;
    }
    start_auth(c, pkt);
}

/* A whole startup-class packet of len bytes at the head of the input. */
static void handle_packet(struct client *c, const struct startup_packet *pkt, size_t len)
{
    if (pkt->kind == STARTUP_MESSAGE) {
        handle_startup_message(c, pkt); /* reads pkt, which points into the input */
        iobuf_consume(&c->conn.in, len);
        return;
    }
    iobuf_consume(&c->conn.in, len);
    switch (pkt->kind) {
    case STARTUP_SSL_REQUEST:
        handle_ssl_request(c);
        return;
    case STARTUP_GSSENC_REQUEST:
        /* GSS encryption is not offered: the client continues without it (or gives up). */
        if (!conn_send(&c->conn, "N", 1))
            client_close(c, "out of memory");
        return;
    case STARTUP_CANCEL:
        cancel_request(pkt->cancel_pid, pkt->cancel_key);
        client_close(c, "cancel request handled");
        return;
    case STARTUP_MESSAGE:
        return;
    }
}

static void handle_startup(struct client *c)
{
    struct iobuf *in = &c->conn.in;
    struct frame f;
    enum frame_result fr = frame_peek_startup(iobuf_head(in), iobuf_len(in), STARTUP_MAX_LEN, &f);
    if (fr == FRAME_NEED_MORE)
        return;
    if (fr != FRAME_OK) {
        protocol_violation(c, fr == FRAME_TOO_BIG ? "startup packet too large" : "invalid startup packet length");
        return;
    }
    if (iobuf_len(in) < f.total_len)
        return;
    struct startup_packet pkt;
    enum startup_result sr = startup_read(frame_startup_body(iobuf_head(in)), f.body_len, &pkt);
    if (sr != STARTUP_OK) {
        protocol_violation(c, sr == STARTUP_UNSUPPORTED_VERSION ? "unsupported frontend protocol"
                                                                : "invalid startup packet layout");
        return;
    }
    handle_packet(c, &pkt, f.total_len);
}

static void send_startup_replies(struct client *c, const struct role_config *role)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    be_write_auth(&w, AUTH_OK);
    for (int i = 0; i < POOL_PARAM_COUNT; i++) {
        /* What the client asked for at startup is what its server will be given. */
        const char *asked = params_reported(&c->params, pool_param_names[i]);
        be_write_parameter_status(&w, pool_param_names[i],
                                  asked ? asked : pool_param(c->pool, pool_param_names[i]));
    }
    be_write_parameter_status(&w, "application_name", c->application_name ? c->application_name : "");
    be_write_parameter_status(&w, "session_authorization", role->server_user);
    be_write_backend_key(&w, workers_cancel_pid(c->id), c->cancel_key);
    be_write_ready(&w, TX_IDLE);
    send_or_close(c, &w);
    wr_destroy(&w);
}

bool client_set_names(struct client *c, const char *tenant, const char *role)
{
    const char *t = names_get(tenant), *r = names_get(role);
    if (!t || !r) {
        names_put(t);
        names_put(r);
        return false;
    }
    names_put(c->ident.tenant);
    names_put(c->ident.role);
    c->ident.tenant = t;
    c->ident.role = r;
    return true;
}

bool client_apply_role(struct client *c, const struct role_config *role)
{
    /* txstart reads the token's claims from an identity: this one borrows the client's. */
    struct jwt_identity id = {.claims_json = c->ident.claims_json};
    snprintf(id.tenant, sizeof id.tenant, "%s", c->ident.tenant);
    snprintf(id.role, sizeof id.role, "%s", c->ident.role);
    struct txstart built;
    if (!txstart_for_client(&built, &id, role, c->application_name ? c->application_name : "pgmesh"))
        return false;
    const struct txstart *tx = txshare_intern(&built);
    if (!tx)
        return false;
    c->mrole = metrics_role(c->ident.role);
    txshare_put(c->tx);
    c->tx = tx;
    c->limits = (struct role_limits){
        .statement_timeout_ms = role->statement_timeout_ms,
        .idle_in_transaction_ms = role->idle_in_transaction_timeout_ms,
        .max_transaction_age_ms = role->max_transaction_age_ms,
        .work_mem_kb = role->work_mem_kb,
    };
    return true;
}

/* max_client_conn_per_tenant and the role's max_client_conn count logged-in clients, across
 * workers (workers.c keeps the counts). */
static bool within_conn_limits(struct client *c, const struct role_config *role)
{
    int n = 0;
    enum login_take took = workers_login_take(c->ident.tenant, c->ident.role, rt.cfg->max_client_conn_per_tenant,
                                              role->max_client_conn, &n);
    char detail[160];
    if (took == LOGIN_TENANT_FULL) {
        snprintf(detail, sizeof detail, "Tenant \"%s\" already has %d connections (max_client_conn_per_tenant).",
                 c->ident.tenant, n);
        metrics_login_refused("too_many_connections");
        client_error(c, "FATAL", SQLSTATE_TOO_MANY_CONNECTIONS, "too many connections for this tenant", detail,
                     NULL);
        return false;
    }
    if (took == LOGIN_ROLE_FULL) {
        snprintf(detail, sizeof detail, "Role \"%s\" already has %d connections (its max_client_conn).",
                 c->ident.role, n);
        metrics_login_refused("too_many_connections");
        client_error(c, "FATAL", SQLSTATE_TOO_MANY_CONNECTIONS, "too many connections for this role", detail,
                     NULL);
        return false;
    }
    c->login_counted = true;
    return true;
}

/* The metrics' label for a refused token. */
static const char *refusal_reason(enum jwt_status st)
{
    static const char *const reasons[] = {
        [JWT_OK] = "ok",
        [JWT_MALFORMED] = "malformed_token",
        [JWT_TOO_LARGE] = "token_too_large",
        [JWT_ALG_NOT_ALLOWED] = "algorithm_not_allowed",
        [JWT_BAD_SIGNATURE] = "bad_signature",
        [JWT_EXPIRED] = "expired",
        [JWT_NOT_YET_VALID] = "not_yet_valid",
        [JWT_WRONG_ISSUER] = "wrong_issuer",
        [JWT_WRONG_AUDIENCE] = "wrong_audience",
        [JWT_MISSING_CLAIM] = "missing_claim",
        [JWT_BAD_CLAIM] = "bad_claim",
        [JWT_UNKNOWN_KEY] = "unknown_key",
    };
    return (size_t)st < sizeof reasons / sizeof reasons[0] && reasons[st] ? reasons[st] : "other";
}

/* Verifies the token against the current [jwt] settings; fills *id. */
static bool verify_token(struct client *c, struct span token, struct jwt_identity *id)
{
    char detail[256] = "";
    struct jwt_policy policy = {
        .alg_mask = rt.cfg->alg_mask,
        .issuer = rt.cfg->issuer,
        .audience = rt.cfg->audience,
        .leeway_s = rt.cfg->leeway_s,
        .tenant_claim = rt.cfg->tenant_claim,
        .role_claim = rt.cfg->role_claim,
        .tenant_pattern = &rt.cfg->tenant_regex,
        .tenant_pattern_src = rt.cfg->tenant_pattern,
        .claims_json = rt.cfg->claims_json,
    };
    enum jwt_status st = jwt_verify_cached(rt.token_cache, rt.keys, &policy, (const char *)token.p, token.len,
                                           (int64_t)time(NULL), id, detail, sizeof detail);
    if (st == JWT_OK)
        return true;
    metrics_login_refused(refusal_reason(st));
    client_error(c, "FATAL", SQLSTATE_INVALID_PASSWORD, jwt_status_message(st), detail,
                 "Obtain a new token from your identity provider.");
    return false;
}

/* A verified client: its role's entry, the connection limits, its pool and transaction start,
 * then the startup replies; it goes idle, and what it already sent is handled. */
static void admit(struct client *c, const char *sub)
{
    const struct role_config *role = config_find_role(rt.cfg, c->ident.role);
    if (!role) {
        char msg[160];
        snprintf(msg, sizeof msg, "token role \"%s\" is not configured", c->ident.role);
        metrics_login_refused("unknown_role");
        client_error(c, "FATAL", SQLSTATE_INVALID_PASSWORD, msg,
                     "pgmesh has no [roles] entry for this role claim.", NULL);
        return;
    }
    if (!within_conn_limits(c, role))
        return;
    const struct db_config *db = config_find_database(rt.cfg, c->database);
    c->pool = db ? pool_find_or_create(db->name, role->server_user, db->conninfo) : NULL;
    if (!c->pool || !client_apply_role(c, role)) {
        client_error(c, "FATAL", SQLSTATE_INTERNAL_ERROR, "could not set up the session", NULL, NULL);
        return;
    }
    stats_session_login(&c->st, &c->pool->stats, c->ident.tenant);
    set_tag(c, "C-%llu %s/%s@%s", (unsigned long long)c->id, c->database, c->ident.tenant, c->addr);
    CLIENT_LOG(LOG_INFO, c, "client_login",
               LOG_FIELDS(LOG_STR("sub", sub), LOG_STR("server_user", role->server_user),
                          LOG_STR("application_name", c->application_name)),
               "login: role=%s tenant=%s sub=%s server_user=%s", c->ident.role, c->ident.tenant, sub,
               role->server_user);
    send_startup_replies(c, role);
    client_set_state(c, CLIENT_IDLE);
    ev_timer_stop(rt.loop, &c->timer);
    link_client_idle(c);
}

/* The password message, whose password is the token. */
static void handle_password(struct client *c)
{
    struct iobuf *in = &c->conn.in;
    struct frame f;
    enum frame_result fr = frame_peek_fe(iobuf_head(in), iobuf_len(in), &rt.limits, &f);
    if (fr == FRAME_NEED_MORE)
        return;
    /* frame_peek_fe fills f only on FRAME_OK: the type byte is read here for the size refusal. */
    if (fr == FRAME_TOO_BIG && frame_type(iobuf_head(in)) == FE_PASSWORD) {
        metrics_login_refused(refusal_reason(JWT_TOO_LARGE));
        client_error(c, "FATAL", SQLSTATE_INVALID_PASSWORD, jwt_status_message(JWT_TOO_LARGE),
                     "Tokens are limited to 16384 bytes.", NULL);
        return;
    }
    if (fr != FRAME_OK || f.type != FE_PASSWORD) {
        protocol_violation(c, "expected a password message");
        return;
    }
    if (iobuf_len(in) < f.total_len)
        return;
    struct span token;
    if (!fe_read_password(frame_body(iobuf_head(in)), f.body_len, &token)) {
        protocol_violation(c, "invalid password message");
        return;
    }
    struct jwt_identity id;
    bool verified = verify_token(c, token, &id);
    iobuf_consume(in, f.total_len);
    if (!verified)
        return;
    c->ident.claims_json = id.claims_json; /* the client's now */
    if (!client_set_names(c, id.tenant, id.role)) {
        client_error(c, "FATAL", SQLSTATE_INTERNAL_ERROR, "out of memory", NULL, NULL);
        return;
    }
    if (c->admin)
        client_console.token_login(c, id.sub);
    else
        admit(c, id.sub);
}

/* A load balancer's PROXY header, before the client's first packet (proxyhdr.h): its source
 * becomes c->addr and the tag (the socket's peer stays on memory exhaustion). False while more of
 * it is due, or when the client was closed. */
static bool take_proxy_header(struct client *c)
{
    struct proxyhdr_result r;
    enum proxyhdr_verdict v = proxyhdr_take(&c->conn.in, c->proxy == CLIENT_PROXY_TRUSTED, c->addr, &r);
    if (v == PROXYHDR_WAIT)
        return false;
    if (v == PROXYHDR_REFUSED) {
        clog(LOG_WARNING, c, "proxy_header_refused", "%s", r.refusal);
        client_close(c, "PROXY protocol header refused");
        return false;
    }
    char *addr = v == PROXYHDR_TAKEN && r.addr[0] ? strdup(r.addr) : NULL;
    if (addr) {
        clog(LOG_DEBUG, c, "proxy_header", "PROXY protocol header: client address %s", addr);
        free(c->addr);
        c->addr = addr;
        set_tag(c, "C-%llu @%s", (unsigned long long)c->id, addr);
    }
    c->proxy = CLIENT_PROXY_OFF;
    return true;
}

/* What the client sent, handled as its state says. */
static void dispatch(struct client *c)
{
    switch (c->state) {
    case CLIENT_STARTUP:
        if (c->proxy != CLIENT_PROXY_OFF && !take_proxy_header(c))
            break;
        handle_startup(c);
        /* An SSLRequest may be followed at once by the startup packet. */
        if (c->state == CLIENT_STARTUP && iobuf_len(&c->conn.in) > 0 && !c->conn.closing)
            handle_startup(c);
        /* ... and the startup packet by the password (and what follows it, which admit passes on):
         * no more bytes may come to wake the reader up. */
        if (c->state == CLIENT_AUTH && iobuf_len(&c->conn.in) > 0 && !c->conn.closing)
            handle_password(c);
        /* ... or, logged in to the admin console by its OS user, by its first command. */
        if (c->state == CLIENT_IDLE && c->admin && iobuf_len(&c->conn.in) > 0 && !c->conn.closing)
            client_console.input(c);
        break;
    case CLIENT_AUTH:
        handle_password(c);
        break;
    case CLIENT_IDLE:
        if (c->admin)
            client_console.input(c);
        else
            link_client_idle(c);
        break;
    case CLIENT_LINKED:
        link_client_input(c);
        break;
    case CLIENT_WAIT_SERVER:
        /* Keep reading while queued (a client that leaves is noticed, and toggling the watcher
         * would cost epoll_ctl calls per transaction), but only up to a bound. */
        if (iobuf_len(&c->conn.in) >= OUT_HIGH_WATER)
            conn_stop_reading(&c->conn);
        break;
    case CLIENT_TLS_HANDSHAKE: /* handled before reading */
    case CLIENT_CLOSING:
        break;
    }
}

static void client_on_read(struct conn *conn)
{
    struct client *c = container_of(conn, struct client, conn);
    if (c->state == CLIENT_TLS_HANDSHAKE) {
        handle_tls_handshake(c);
        return;
    }
    /* While linked, stop reading when the server's output is backed up (backpressure). */
    if (c->state == CLIENT_LINKED && c->server && iobuf_len(&c->server->conn.out) >= OUT_HIGH_WATER) {
        conn_stop_reading(conn);
        return;
    }
    enum io_result r = conn_fill(conn, 65536);
    if (r == IO_EOF || r == IO_ERROR) {
        client_close(c, r == IO_EOF ? "client closed the connection" : "client socket error");
        return;
    }
    if (r == IO_OK && (c->state == CLIENT_IDLE || c->state == CLIENT_LINKED))
        stats_input(&c->st, ev_now(rt.loop));
    dispatch(c);
}

static void client_on_drained(struct conn *conn)
{
    /* Our output to the client drained: the linked server may send more. */
    struct client *c = container_of(conn, struct client, conn);
    if (c->server)
        conn_resume_reading(&c->server->conn);
}

static void client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct client *c = container_of(w, struct client, timer);
    if (c->state == CLIENT_WAIT_SERVER) {
        char detail[160];
        snprintf(detail, sizeof detail,
                 "No server connection of pool %s/%s became free within query_wait_timeout (%lld ms).",
                 c->pool->database, c->pool->server_user, (long long)rt.cfg->query_wait_timeout_ms);
        client_error(c, "FATAL", SQLSTATE_TOO_MANY_CONNECTIONS, "query_wait_timeout expired", detail,
                     "Retry later, or raise default_pool_size or query_wait_timeout.");
    } else if (c->state == CLIENT_TLS_HANDSHAKE) {
        /* No ErrorResponse can be sent in the middle of a handshake. */
        clog(LOG_INFO, c, "login_timeout", "login timeout during the TLS handshake");
        client_close(c, "login timeout");
    } else if (c->state == CLIENT_STARTUP || c->state == CLIENT_AUTH) {
        char detail[128];
        snprintf(detail, sizeof detail,
                 "Startup and authentication must finish within client_login_timeout (%lld ms).",
                 (long long)rt.cfg->client_login_timeout_ms);
        send_error(c, "login_timeout",
                   &(struct pq_error){"FATAL", SQLSTATE_PROTOCOL_VIOLATION, "login timeout", detail, NULL});
    }
}

void client_accept(int fd, bool is_unix, const char *addr, enum client_proxy proxy)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    /* Strided, so that ids in the logs and the console name one client across workers. */
    c->id = ++rt.next_client_id * (uint64_t)worker_count + (uint64_t)worker_index;
    c->ident.tenant = c->ident.role = names_empty;
    c->is_unix = is_unix;
    c->proxy = (unsigned char)proxy;
    c->addr = strdup(addr);
    set_tag(c, "C-%llu @%s", (unsigned long long)c->id, addr);
    if (!c->addr || !c->tag || RAND_bytes((unsigned char *)&c->cancel_key, sizeof c->cancel_key) != 1) {
        free(c->addr);
        free(c->tag);
        free(c);
        close(fd);
        return;
    }
    c->cancel_key |= PEERS_KEY_HOPS;
    c->over_limit = workers_clients_add(1) > rt.cfg->max_client_conn;
    c->connect_time = ev_now(rt.loop);
    conn_init(&c->conn, fd, client_on_read, client_on_drained, client_on_release);
    TAILQ_INSERT_TAIL(&rt.clients, c, link);
    rt.nclients++;
    c->state = CLIENT_STARTUP;
    ev_timer_init(&c->timer, client_timer_cb, (double)rt.cfg->client_login_timeout_ms / 1000.0, 0.);
    ev_timer_start(rt.loop, &c->timer);
    conn_start_reading(&c->conn);
}
