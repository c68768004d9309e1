/* mini.h: the small toolkit the libpq integration tests share. A raw-socket speaker of just enough
 * of the protocol to read the exact SQLSTATE of a connection-time FATAL (libpq only gives text),
 * a deadline-bounded wrapper around libpq's async API, and failure counting.
 * Test-only: every wait has a deadline; nothing here retries silently or hides a failure.
 * Reference: PostgreSQL documentation, "Frontend/Backend Protocol", "Message Formats". */
#ifndef PGMESH_TESTS_MINI_H
#define PGMESH_TESTS_MINI_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* ---- failure counting ------------------------------------------------------------------------ */

static int mini_failures __attribute__((unused));

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            mini_failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static inline void mini_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("-- ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static inline int64_t mini_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void mini_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The value of a required environment variable; exits 2 when it is missing. */
static inline const char *mini_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "missing environment variable %s\n", name);
        exit(2);
    }
    return v;
}

/* ---- libpq with deadlines ------------------------------------------------------------------- */

/* Connects to pgmesh on 127.0.0.1:port with password = token. Returns the connection even when it
 * failed (check PQstatus); connect_timeout bounds the wait. */
static inline PGconn *mini_pq_connect(int port, const char *dbname, const char *token)
{
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    const char *const keys[] = {"host",     "port",    "dbname",          "user",
                                "password", "sslmode", "connect_timeout", NULL};
    const char *const vals[] = {"127.0.0.1", portbuf, dbname, "tester", token, "disable", "10", NULL};
    return PQconnectdbParams(keys, vals, 0);
}

/* mini_pq_connect to database media_analytics on $MESH_PORT; exits 1 (with libpq's message) when
 * the connection fails, for tests that cannot go on without it. */
static inline PGconn *mini_pq_connect_or_exit(const char *token)
{
    PGconn *c = mini_pq_connect(atoi(mini_env("MESH_PORT")), "media_analytics", token);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "FAIL cannot connect through pgmesh: %s", PQerrorMessage(c));
        exit(1);
    }
    return c;
}

/* Waits until conn's pending command has produced all its results, or deadline_ms passes.
 * Returns true when PQgetResult will not block. */
static inline bool mini_pq_wait(PGconn *conn, int64_t deadline_ms)
{
    for (;;) {
        if (!PQconsumeInput(conn))
            return true; /* the error is reported by PQgetResult */
        if (!PQisBusy(conn))
            return true;
        int64_t left = deadline_ms - mini_now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return false;
    }
}

/* Results of one command string, kept so callers can look at every statement's outcome. */
#define MINI_MAX_RESULTS 16
struct mini_results {
    PGresult *res[MINI_MAX_RESULTS];
    int n;
    bool timed_out;
};

static inline void mini_results_clear(struct mini_results *r)
{
    for (int i = 0; i < r->n; i++)
        PQclear(r->res[i]);
    memset(r, 0, sizeof *r);
}

/* Collects all results of the command already sent on conn, until NULL or the deadline. */
static inline void mini_collect(PGconn *conn, int timeout_ms, struct mini_results *out)
{
    memset(out, 0, sizeof *out);
    int64_t deadline = mini_now_ms() + timeout_ms;
    for (;;) {
        if (!mini_pq_wait(conn, deadline)) {
            out->timed_out = true;
            return;
        }
        PGresult *res = PQgetResult(conn);
        if (res == NULL)
            return;
        if (out->n < MINI_MAX_RESULTS)
            out->res[out->n++] = res;
        else
            PQclear(res);
    }
}

/* Collects every result of what was just sent and keeps the last (owned by the caller); NULL on
 * timeout or when there was none. */
static inline PGresult *mini_last_result(PGconn *conn, int timeout_ms)
{
    struct mini_results r;
    mini_collect(conn, timeout_ms, &r);
    if (r.timed_out || r.n == 0) {
        mini_results_clear(&r);
        return NULL;
    }
    PGresult *last = r.res[r.n - 1];
    r.n--;
    mini_results_clear(&r);
    return last;
}

/* Not for COPY ... FROM STDIN: libpq keeps returning its COPY_IN result and this spins until the
 * deadline; read one result and feed the COPY yourself.
 * Runs sql (simple protocol, possibly several statements) with a deadline. Returns the last result
 * (owned by the caller) or NULL on timeout or send failure. After a FATAL the last result is
 * libpq's "server closed the connection" one, without SQLSTATE: use mini_collect to see all. */
static inline PGresult *mini_exec(PGconn *conn, const char *sql, int timeout_ms)
{
    if (!PQsendQuery(conn, sql))
        return NULL;
    return mini_last_result(conn, timeout_ms);
}

/* As mini_exec, but with the extended protocol and text parameters (unnamed statement). */
static inline PGresult *mini_exec_params(PGconn *conn, const char *sql, int nparams,
                                         const char *const *params, int timeout_ms)
{
    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
        return NULL;
    return mini_last_result(conn, timeout_ms);
}

static inline const char *mini_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* The query every test uses to ask the server who it thinks we are. One row: tenant claim, role
 * claim, current_user, visible rows, visible rows of another tenant, distinct countries visible.
 * MINI_CLAIMS_COLS and MINI_CLAIMS_FROM let a test append columns of its own. */
#define MINI_CLAIMS_COLS                                                                           \
    "current_setting('request.jwt.claim.tenant', true),"                                          \
    " current_setting('request.jwt.claim.role', true), current_user::text, count(*),"             \
    " count(*) FILTER (WHERE country_code IS DISTINCT FROM"                                       \
    "   current_setting('request.jwt.claim.tenant', true)),"                                      \
    " count(DISTINCT country_code)"
#define MINI_CLAIMS_FROM " FROM core.fct_playback_sessions"
#define MINI_CLAIMS_SQL "SELECT " MINI_CLAIMS_COLS MINI_CLAIMS_FROM

/* The server login role mesh_config maps each token role to; NULL when the test did not set it. */
static inline const char *mini_server_role(const char *token_role)
{
    if (strcmp(token_role, "regional_analyst") == 0)
        return "marketing_domain_role";
    if (strcmp(token_role, "global_corporate_audit") == 0)
        return "audit_role";
    return NULL;
}

/* Checks one MINI_CLAIMS_SQL result against the identity the token carries. A regional role must
 * see at least one row and none of another tenant; the audit role must see several countries.
 * Returns true when everything matched; otherwise describes the mismatch in why. */
static inline bool mini_claims_ok(const PGresult *res, const char *tenant, const char *role,
                                  char *why, size_t whylen)
{
    if (res == NULL) {
        snprintf(why, whylen, "no result (timeout)");
        return false;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(why, whylen, "status %s sqlstate %s: %s", PQresStatus(PQresultStatus(res)),
                 mini_sqlstate(res), PQresultErrorMessage(res));
        return false;
    }
    if (PQntuples(res) != 1 || PQnfields(res) < 6) {
        snprintf(why, whylen, "%d rows, %d columns", PQntuples(res), PQnfields(res));
        return false;
    }
    const char *got_tenant = PQgetvalue(res, 0, 0), *got_role = PQgetvalue(res, 0, 1);
    long rows = atol(PQgetvalue(res, 0, 3)), foreign = atol(PQgetvalue(res, 0, 4));
    long countries = atol(PQgetvalue(res, 0, 5));
    bool audit = strcmp(role, "global_corporate_audit") == 0;
    if (strcmp(got_tenant, tenant) != 0 || strcmp(got_role, role) != 0) {
        snprintf(why, whylen, "claims tenant=%s role=%s, token has tenant=%s role=%s", got_tenant,
                 got_role, tenant, role);
        return false;
    }
    const char *want_user = mini_server_role(role), *got_user = PQgetvalue(res, 0, 2);
    if (want_user != NULL && strcmp(got_user, want_user) != 0) {
        snprintf(why, whylen, "current_user %s, role %s maps to %s", got_user, role, want_user);
        return false;
    }
    if (!audit && (rows < 1 || foreign != 0)) {
        snprintf(why, whylen, "tenant %s sees %ld rows, %ld of another tenant", tenant, rows,
                 foreign);
        return false;
    }
    if (audit && countries < 2) {
        snprintf(why, whylen, "audit role sees %ld countries (%ld rows)", countries, rows);
        return false;
    }
    return true;
}

/* ---- raw protocol ---------------------------------------------------------------------------- */

/* A growable message builder: mb_begin reserves the length word, mb_end back-patches it. */
struct mini_buf {
    unsigned char *data;
    size_t len, cap, start;
    bool failed;
};

static inline void mb_bytes(struct mini_buf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void mb_u32(struct mini_buf *b, uint32_t v)
{
    uint32_t n = htonl(v);
    mb_bytes(b, &n, 4);
}

static inline void mb_cstr(struct mini_buf *b, const char *s) { mb_bytes(b, s, strlen(s) + 1); }

/* type 0: a startup-class packet, which has no type byte. */
static inline void mb_begin(struct mini_buf *b, char type)
{
    if (type != 0)
        mb_bytes(b, &type, 1);
    b->start = b->len;
    mb_u32(b, 0);
}

static inline void mb_end(struct mini_buf *b)
{
    if (b->failed)
        return;
    uint32_t n = htonl((uint32_t)(b->len - b->start));
    memcpy(b->data + b->start, &n, 4);
}

static inline void mb_free(struct mini_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* A blocking loopback TCP connection with send/receive timeouts; -1 on failure. */
static inline int mini_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Closes with an RST instead of a FIN: the abrupt death of a client. */
static inline void mini_close_abort(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Sends all of b; false when the peer stopped taking bytes (closed, reset, or send timeout). */
static inline bool mini_send(int fd, const struct mini_buf *b)
{
    if (b->failed)
        return false;
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        off += (size_t)n;
    }
    return true;
}

enum mini_read {
    MINI_READ_OK,
    MINI_READ_EOF,     /* orderly close or reset before a whole message */
    MINI_READ_TIMEOUT,
    MINI_READ_BAD,     /* a length below 4 or above max_len */
};

/* Reads exactly n bytes before deadline_ms. */
static inline enum mini_read mini_recv_n(int fd, unsigned char *p, size_t n, int64_t deadline_ms)
{
    size_t off = 0;
    while (off < n) {
        int64_t left = deadline_ms - mini_now_ms();
        if (left <= 0)
            return MINI_READ_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return MINI_READ_TIMEOUT;
        ssize_t r = recv(fd, p + off, n - off, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return MINI_READ_EOF;
        off += (size_t)r;
    }
    return MINI_READ_OK;
}

/* One backend message. body is malloc'd (NUL-terminated for convenience); free with free(). */
struct mini_msg {
    char type;
    uint32_t len; /* of body, without the length word */
    unsigned char *body;
};

static inline enum mini_read mini_read_msg(int fd, struct mini_msg *m, int64_t deadline_ms)
{
    unsigned char hdr[5];
    memset(m, 0, sizeof *m);
    enum mini_read r = mini_recv_n(fd, hdr, 5, deadline_ms);
    if (r != MINI_READ_OK)
        return r;
    uint32_t len;
    memcpy(&len, hdr + 1, 4);
    len = ntohl(len);
    if (len < 4 || len > (1u << 24))
        return MINI_READ_BAD;
    m->type = (char)hdr[0];
    m->len = len - 4;
    m->body = malloc((size_t)m->len + 1);
    if (m->body == NULL)
        return MINI_READ_BAD;
    r = mini_recv_n(fd, m->body, m->len, deadline_ms);
    if (r != MINI_READ_OK) {
        free(m->body);
        m->body = NULL;
        return r;
    }
    m->body[m->len] = 0;
    return MINI_READ_OK;
}

/* The fields of an ErrorResponse the tests look at; empty strings when absent. */
struct mini_error {
    char severity[16];
    char sqlstate[8];
    char message[512];
    char detail[1024];
};

static inline void mini_error_parse(const struct mini_msg *m, struct mini_error *e)
{
    memset(e, 0, sizeof *e);
    size_t pos = 0;
    while (pos < m->len && m->body[pos] != 0) {
        char code = (char)m->body[pos++];
        const char *val = (const char *)m->body + pos;
        size_t vlen = strnlen(val, m->len - pos);
        switch (code) {
        case 'V': snprintf(e->severity, sizeof e->severity, "%.*s", (int)vlen, val); break;
        case 'S':
            if (e->severity[0] == 0)
                snprintf(e->severity, sizeof e->severity, "%.*s", (int)vlen, val);
            break;
        case 'C': snprintf(e->sqlstate, sizeof e->sqlstate, "%.*s", (int)vlen, val); break;
        case 'M': snprintf(e->message, sizeof e->message, "%.*s", (int)vlen, val); break;
        case 'D': snprintf(e->detail, sizeof e->detail, "%.*s", (int)vlen, val); break;
        default: break;
        }
        pos += vlen + 1;
    }
}

static inline void mini_build_startup(struct mini_buf *b, const char *user, const char *dbname)
{
    mb_begin(b, 0);
    mb_u32(b, 196608u); /* protocol 3.0 */
    mb_cstr(b, "user");
    mb_cstr(b, user);
    mb_cstr(b, "database");
    mb_cstr(b, dbname);
    mb_cstr(b, "application_name");
    mb_cstr(b, "pgmesh-it-raw");
    mb_bytes(b, "", 1);
    mb_end(b);
}

/* True when the peer closes fd (EOF or reset) before deadline_ms; bytes before that are skipped. */
static inline bool mini_wait_closed(int fd, int64_t deadline_ms)
{
    unsigned char junk[4096];
    for (;;) {
        int64_t left = deadline_ms - mini_now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return false;
        ssize_t r = recv(fd, junk, sizeof junk, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return true;
    }
}

/* Outcome of a raw login. */
enum mini_login {
    MINI_LOGIN_READY,   /* ReadyForQuery seen; fd stays open */
    MINI_LOGIN_ERROR,   /* ErrorResponse; err filled; fd closed */
    MINI_LOGIN_CLOSED,  /* the peer closed without an ErrorResponse */
    MINI_LOGIN_TIMEOUT,
    MINI_LOGIN_PROTOCOL /* something we did not expect (described on stderr) */
};

struct mini_session {
    int fd;
    uint32_t pid, key; /* BackendKeyData, 0 when none was sent */
    char tx_status;    /* from the last ReadyForQuery */
};

/* Reads messages until ReadyForQuery or ErrorResponse, within deadline_ms. Used after login and
 * after each raw query; CommandComplete, DataRow and friends are skipped. */
static inline enum mini_login mini_read_until_ready(struct mini_session *s, struct mini_error *err,
                                                    int64_t deadline_ms, bool stop_at_error)
{
    for (;;) {
        struct mini_msg m;
        enum mini_read r = mini_read_msg(s->fd, &m, deadline_ms);
        if (r == MINI_READ_TIMEOUT)
            return MINI_LOGIN_TIMEOUT;
        if (r == MINI_READ_EOF)
            return MINI_LOGIN_CLOSED;
        if (r == MINI_READ_BAD) {
            fprintf(stderr, "raw: bad message length from peer\n");
            return MINI_LOGIN_PROTOCOL;
        }
        char type = m.type;
        if (type == 'E') {
            mini_error_parse(&m, err);
            free(m.body);
            if (stop_at_error)
                return MINI_LOGIN_ERROR;
            continue;
        }
        if (type == 'K' && m.len == 8) {
            uint32_t v[2];
            memcpy(v, m.body, 8);
            s->pid = ntohl(v[0]);
            s->key = ntohl(v[1]);
        } else if (type == 'Z' && m.len == 1) {
            s->tx_status = (char)m.body[0];
            free(m.body);
            return MINI_LOGIN_READY;
        }
        free(m.body);
    }
}

/* Logs in with StartupMessage and a cleartext password. On READY, *s holds the open socket. On
 * any other outcome the socket is closed (after checking, for ERROR, that the peer closed it:
 * a FATAL must end the connection; *closed_after_error tells). */
static inline enum mini_login mini_login(int port, const char *dbname, const char *password,
                                         struct mini_session *s, struct mini_error *err,
                                         bool *closed_after_error)
{
    memset(s, 0, sizeof *s);
    memset(err, 0, sizeof *err);
    if (closed_after_error)
        *closed_after_error = false;
    s->fd = mini_tcp_connect(port);
    if (s->fd < 0)
        return MINI_LOGIN_CLOSED;
    int64_t deadline = mini_now_ms() + 10000;
    struct mini_buf b = {0};
    mini_build_startup(&b, "tester", dbname);
    bool sent = mini_send(s->fd, &b);
    mb_free(&b);
    enum mini_login out = MINI_LOGIN_CLOSED;
    struct mini_msg m;
    enum mini_read r = sent ? mini_read_msg(s->fd, &m, deadline) : MINI_READ_EOF;
    if (r == MINI_READ_TIMEOUT) {
        out = MINI_LOGIN_TIMEOUT;
        goto done;
    }
    if (r != MINI_READ_OK)
        goto done;
    if (m.type == 'E') {
        mini_error_parse(&m, err);
        free(m.body);
        out = MINI_LOGIN_ERROR;
        goto done;
    }
    uint32_t code = 0;
    if (m.type == 'R' && m.len >= 4) {
        memcpy(&code, m.body, 4);
        code = ntohl(code);
    }
    free(m.body);
    if (m.type != 'R' || code != 3) {
        fprintf(stderr, "raw: expected AuthenticationCleartextPassword, got '%c' code %u\n",
                m.type, code);
        out = MINI_LOGIN_PROTOCOL;
        goto done;
    }
    mb_begin(&b, 'p');
    mb_cstr(&b, password);
    mb_end(&b);
    sent = mini_send(s->fd, &b);
    mb_free(&b);
    if (!sent)
        goto done;
    out = mini_read_until_ready(s, err, deadline, true);
    if (out == MINI_LOGIN_READY)
        return out;
done:
    if (out == MINI_LOGIN_ERROR && closed_after_error)
        *closed_after_error = mini_wait_closed(s->fd, mini_now_ms() + 5000);
    close(s->fd);
    s->fd = -1;
    return out;
}

/* Sends one simple Query on a raw session. */
static inline bool mini_raw_query(struct mini_session *s, const char *sql)
{
    struct mini_buf b = {0};
    mb_begin(&b, 'Q');
    mb_cstr(&b, sql);
    mb_end(&b);
    bool ok = mini_send(s->fd, &b);
    mb_free(&b);
    return ok;
}

/* Sends a CancelRequest for (pid, key) to port on a fresh socket and waits (bounded) for the
 * peer to close it, as PostgreSQL does. False when the request could not be delivered. */
static inline bool mini_raw_cancel(int port, uint32_t pid, uint32_t key)
{
    int fd = mini_tcp_connect(port);
    if (fd < 0)
        return false;
    struct mini_buf b = {0};
    mb_begin(&b, 0);
    mb_u32(&b, 80877102u);
    mb_u32(&b, pid);
    mb_u32(&b, key);
    mb_end(&b);
    bool ok = mini_send(fd, &b);
    mb_free(&b);
    unsigned char junk[64];
    (void)mini_recv_n(fd, junk, sizeof junk, mini_now_ms() + 5000);
    close(fd);
    return ok;
}

static inline const char *mini_login_name(enum mini_login l)
{
    switch (l) {
    case MINI_LOGIN_READY: return "ready";
    case MINI_LOGIN_ERROR: return "error";
    case MINI_LOGIN_CLOSED: return "closed without an error";
    case MINI_LOGIN_TIMEOUT: return "timeout";
    case MINI_LOGIN_PROTOCOL: return "protocol surprise";
    }
    return "?";
}

#endif
