/* errors: every error pgmesh promises, with its exact SQLSTATE. Connection-time FATALs are read
 * over a raw socket (libpq only gives their text); query errors with PQresultErrorField. After
 * each error a client that was already connected and a fresh client must both still work.
 * Usage: errors auth | wait-timeout | max-conn | server DB DETAIL_SUBSTRING | malformed
 * Env: MESH_PORT, TOK_GOOD (tenant DE, regional_analyst) and, for "auth", the TOK_* of the table
 * below, minted by test_errors.sh. */
#define _GNU_SOURCE
#include "mini.h"

static int port;
static const char *good;
static PGconn *bystander; /* connected before the errors, in an open transaction throughout */

static void check_client(PGconn *conn, const char *what)
{
    char why[600];
    PGresult *res = mini_exec(conn, MINI_CLAIMS_SQL, 10000);
    CHECK(mini_claims_ok(res, "DE", "regional_analyst", why, sizeof why), "%s: %s", what, why);
    PQclear(res);
}

/* After an error: the bystander and a brand-new client both still work. */
static void others_still_work(const char *after)
{
    char what[200];
    if (bystander != NULL) {
        snprintf(what, sizeof what, "connected client after %s", after);
        check_client(bystander, what);
    }
    PGconn *fresh = mini_pq_connect(port, "media_analytics", good);
    snprintf(what, sizeof what, "fresh client after %s", after);
    CHECK(PQstatus(fresh) == CONNECTION_OK, "%s cannot connect: %s", what, PQerrorMessage(fresh));
    if (PQstatus(fresh) == CONNECTION_OK)
        check_client(fresh, what);
    PQfinish(fresh);
}

static void open_bystander(void)
{
    bystander = mini_pq_connect(port, "media_analytics", good);
    if (PQstatus(bystander) != CONNECTION_OK) {
        fprintf(stderr, "FAIL bystander cannot connect: %s", PQerrorMessage(bystander));
        exit(1);
    }
    PGresult *res = mini_exec(bystander, "BEGIN", 10000);
    CHECK(res && PQresultStatus(res) == PGRES_COMMAND_OK, "bystander BEGIN failed");
    PQclear(res);
}

static void close_bystander(void)
{
    PGresult *res = mini_exec(bystander, "COMMIT", 10000);
    CHECK(res && PQresultStatus(res) == PGRES_COMMAND_OK, "bystander COMMIT failed: %s",
          res ? PQresultErrorMessage(res) : "timeout");
    CHECK(PQtransactionStatus(bystander) == PQTRANS_IDLE, "bystander not idle after COMMIT");
    PQclear(res);
    PQfinish(bystander);
    bystander = NULL;
}

/* Logs in with password over a raw socket and expects FATAL sqlstate with message containing
 * needle, then the connection closed. */
static void expect_login_fatal(const char *case_name, const char *dbname, const char *password,
                               const char *sqlstate, const char *needle)
{
    struct mini_session s;
    struct mini_error e;
    bool closed = false;
    enum mini_login l = mini_login(port, dbname, password, &s, &e, &closed);
    if (l == MINI_LOGIN_READY)
        close(s.fd);
    CHECK(l == MINI_LOGIN_ERROR, "%s: login %s, want FATAL %s", case_name, mini_login_name(l),
          sqlstate);
    if (l == MINI_LOGIN_ERROR) {
        CHECK(strcmp(e.sqlstate, sqlstate) == 0, "%s: sqlstate %s (%s), want %s", case_name,
              e.sqlstate, e.message, sqlstate);
        CHECK(strcmp(e.severity, "FATAL") == 0, "%s: severity %s, want FATAL", case_name,
              e.severity);
        CHECK(strstr(e.message, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", case_name,
              e.message, needle);
        CHECK(closed, "%s: connection not closed after the FATAL", case_name);
        mini_note("%s: %s %s \"%s\" detail \"%s\"", case_name, e.severity, e.sqlstate, e.message,
                  e.detail);
    }
    others_still_work(case_name);
}

struct bad_token {
    const char *env, *needle;
};
static const struct bad_token bad_tokens[] = {
    {"TOK_EXPIRED", "token expired"},
    {"TOK_NOT_YET_VALID", "token is not yet valid"},
    {"TOK_BAD_SIGNATURE", "token signature is invalid"},
    {"TOK_ALG_NONE", "token algorithm not allowed"},
    {"TOK_ALG_HS512", "token algorithm not allowed"},
    {"TOK_WRONG_ISSUER", "token issuer not accepted"},
    {"TOK_WRONG_AUDIENCE", "token audience not accepted"},
    {"TOK_NO_TENANT", "token is missing a required claim"},
    {"TOK_NO_ROLE", "token is missing a required claim"},
    {"TOK_BAD_TENANT", "token claim is invalid"},
    {"TOK_UNKNOWN_ROLE", "not configured"},
};

static void case_auth(void)
{
    /* The raw helper itself, on the good path: login ends in ReadyForQuery with a cancel key. */
    struct mini_session s;
    struct mini_error e;
    enum mini_login l = mini_login(port, "media_analytics", good, &s, &e, NULL);
    CHECK(l == MINI_LOGIN_READY, "good token over raw socket: %s %s %s", mini_login_name(l),
          e.sqlstate, e.message);
    if (l == MINI_LOGIN_READY) {
        CHECK(s.tx_status == 'I', "raw login: ReadyForQuery status '%c'", s.tx_status);
        close(s.fd);
    }

    open_bystander();
    expect_login_fatal("unknown database", "no_such_database", good, "3D000", "");
    for (size_t i = 0; i < sizeof bad_tokens / sizeof bad_tokens[0]; i++)
        expect_login_fatal(bad_tokens[i].env, "media_analytics", mini_env(bad_tokens[i].env),
                           "28P01", bad_tokens[i].needle);
    expect_login_fatal("malformed token", "media_analytics", "this-is-not-a-jwt", "28P01",
                       "token is malformed");
    expect_login_fatal("token with four parts", "media_analytics", "a.b.c.d", "28P01",
                       "token is malformed");
    expect_login_fatal("empty password", "media_analytics", "", "28P01", "");

    /* Over 16 KiB but well within the password message limit: refused as too large. */
    size_t big_len = 17000;
    char *big = malloc(big_len + 1);
    if (big == NULL)
        exit(2);
    memset(big, 'A', big_len);
    big[5000] = '.';
    big[10000] = '.';
    big[big_len] = 0;
    expect_login_fatal("oversized token", "media_analytics", big, "28P01", "too large");
    free(big);
    close_bystander();
}

/* Pool of one, query_wait_timeout 1s: while A holds the only server connection in a transaction,
 * B's query is refused with 53300; A is unaffected and the pool serves others once A commits. */
static void case_wait_timeout(void)
{
    PGconn *a = mini_pq_connect(port, "media_analytics", good);
    PGconn *b = mini_pq_connect(port, "media_analytics", good);
    if (PQstatus(a) != CONNECTION_OK || PQstatus(b) != CONNECTION_OK) {
        fprintf(stderr, "FAIL cannot connect: %s / %s", PQerrorMessage(a), PQerrorMessage(b));
        exit(1);
    }
    PGresult *res = mini_exec(a, "BEGIN; SELECT 1", 10000);
    CHECK(res && PQresultStatus(res) == PGRES_TUPLES_OK, "A: BEGIN; SELECT 1 failed");
    PQclear(res);
    CHECK(PQtransactionStatus(a) == PQTRANS_INTRANS, "A not in a transaction");

    /* A FATAL is followed by the close, which libpq reports as a second result: look at all. */
    int64_t t0 = mini_now_ms();
    CHECK(PQsendQuery(b, "SELECT 1"), "B: send failed");
    struct mini_results r;
    mini_collect(b, 15000, &r);
    CHECK(!r.timed_out, "B: no answer within 15 s (query_wait_timeout is 1s)");
    const PGresult *err = NULL;
    for (int i = 0; i < r.n && err == NULL; i++)
        if (PQresultStatus(r.res[i]) == PGRES_FATAL_ERROR)
            err = r.res[i];
    CHECK(err && strcmp(mini_sqlstate(err), "53300") == 0, "B: got %s sqlstate '%s' %s, want 53300",
          err ? PQresStatus(PQresultStatus(err)) : "no error", mini_sqlstate(err),
          err ? PQresultErrorMessage(err) : "");
    if (err)
        mini_note("wait timeout after %lld ms: %s", (long long)(mini_now_ms() - t0),
                  PQresultErrorMessage(err));
    mini_results_clear(&r);

    check_client(a, "A after B's wait timeout");
    res = mini_exec(a, "COMMIT", 10000);
    CHECK(res && PQresultStatus(res) == PGRES_COMMAND_OK, "A: COMMIT failed");
    PQclear(res);
    PQfinish(a);
    PQfinish(b);
    others_still_work("wait timeout");
}

/* max_client_conn = 3: three clients in, the fourth refused with FATAL 53300, the three unharmed,
 * and once one leaves a new client gets in. */
static void case_max_conn(void)
{
    PGconn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = mini_pq_connect(port, "media_analytics", good);
        if (PQstatus(c[i]) != CONNECTION_OK) {
            fprintf(stderr, "FAIL client %d of 3 cannot connect: %s", i, PQerrorMessage(c[i]));
            exit(1);
        }
    }
    struct mini_session s;
    struct mini_error e;
    bool closed = false;
    enum mini_login l = mini_login(port, "media_analytics", good, &s, &e, &closed);
    if (l == MINI_LOGIN_READY)
        close(s.fd);
    CHECK(l == MINI_LOGIN_ERROR && strcmp(e.sqlstate, "53300") == 0 && closed,
          "4th client: %s sqlstate '%s' \"%s\" closed=%d, want FATAL 53300 and close",
          mini_login_name(l), e.sqlstate, e.message, closed);
    mini_note("4th client: %s %s \"%s\"", e.severity, e.sqlstate, e.message);
    for (int i = 0; i < 3; i++)
        check_client(c[i], "admitted client after the 4th was refused");
    PQfinish(c[0]);

    /* The slot frees when pgmesh has seen the close; allow it a few seconds. */
    bool admitted = false;
    for (int64_t end = mini_now_ms() + 5000; !admitted && mini_now_ms() < end;) {
        l = mini_login(port, "media_analytics", good, &s, &e, NULL);
        if (l == MINI_LOGIN_READY) {
            admitted = true;
            close(s.fd);
        } else {
            mini_sleep_ms(100);
        }
    }
    CHECK(admitted, "no client admitted within 5 s after one of three left");
    PQfinish(c[1]);
    PQfinish(c[2]);
}

/* A database whose server cannot be reached or refuses pgmesh's login: 08006 with the server's
 * (or libpq's) message in the detail, whether pgmesh reports it at login or at the first query. */
static void server_once(const char *dbname, const char *detail_needle)
{
    struct mini_session s;
    struct mini_error e;
    bool closed = false;
    enum mini_login l = mini_login(port, dbname, good, &s, &e, &closed);
    const char *when = "login";
    if (l == MINI_LOGIN_READY) {
        when = "first query";
        CHECK(mini_raw_query(&s, "SELECT 1"), "%s: could not send a query", dbname);
        l = mini_read_until_ready(&s, &e, mini_now_ms() + 30000, true);
        close(s.fd);
    }
    CHECK(l == MINI_LOGIN_ERROR, "%s: %s at %s, want an 08006 error", dbname, mini_login_name(l),
          when);
    CHECK(strcmp(e.sqlstate, "08006") == 0, "%s: sqlstate '%s' \"%s\" at %s, want 08006", dbname,
          e.sqlstate, e.message, when);
    CHECK(strstr(e.detail, detail_needle) != NULL, "%s: detail \"%s\" lacks \"%s\"", dbname,
          e.detail, detail_needle);
    mini_note("%s at %s: %s %s \"%s\" detail \"%s\"", dbname, when, e.severity, e.sqlstate,
              e.message, e.detail);
    others_still_work(dbname);
}

/* Several rounds: repeated failures of a server must not wear pgmesh down either. */
static void case_server(const char *dbname, const char *detail_needle)
{
    for (int i = 0; i < 5; i++)
        server_once(dbname, detail_needle);
}

/* Sends raw bytes on a connection at the given stage and expects 08P01 then the close. */
static void expect_protocol_violation(const char *what, bool after_login, const struct mini_buf *b)
{
    struct mini_session s = {.fd = -1};
    struct mini_error e;
    if (after_login) {
        enum mini_login l = mini_login(port, "media_analytics", good, &s, &e, NULL);
        if (l != MINI_LOGIN_READY) {
            CHECK(false, "%s: login %s", what, mini_login_name(l));
            return;
        }
    } else {
        s.fd = mini_tcp_connect(port);
        if (s.fd < 0) {
            CHECK(false, "%s: cannot connect", what);
            return;
        }
    }
    (void)mini_send(s.fd, b); /* pgmesh may close before taking all of it */
    memset(&e, 0, sizeof e);
    struct mini_msg m;
    enum mini_read r;
    int64_t deadline = mini_now_ms() + 10000;
    do {
        r = mini_read_msg(s.fd, &m, deadline);
        if (r == MINI_READ_OK && m.type == 'E')
            mini_error_parse(&m, &e);
        if (r == MINI_READ_OK)
            free(m.body);
    } while (r == MINI_READ_OK && e.sqlstate[0] == 0);
    CHECK(strcmp(e.sqlstate, "08P01") == 0, "%s: sqlstate '%s' \"%s\" (read: %s), want 08P01",
          what, e.sqlstate, e.message,
          r == MINI_READ_TIMEOUT ? "timeout" : r == MINI_READ_EOF ? "closed" : "message");
    bool closed = r == MINI_READ_EOF || mini_wait_closed(s.fd, mini_now_ms() + 5000);
    CHECK(closed, "%s: connection still open after the protocol violation", what);
    if (e.sqlstate[0])
        mini_note("%s: %s %s \"%s\"", what, e.severity, e.sqlstate, e.message);
    close(s.fd);
    others_still_work(what);
}

static void case_malformed(void)
{
    open_bystander();
    struct mini_buf b = {0};

    mb_u32(&b, 4); /* a startup packet that is only its length word */
    expect_protocol_violation("startup length 4", false, &b);
    mb_free(&b);

    mb_u32(&b, 20000); /* over PostgreSQL's 10000-byte startup limit; the rest never comes */
    mb_u32(&b, 196608u);
    mb_cstr(&b, "user");
    expect_protocol_violation("startup length 20000", false, &b);
    mb_free(&b);

    mb_bytes(&b, "Q", 1); /* a Query claiming almost 2 GiB */
    mb_u32(&b, 0x7ffffff0u);
    mb_cstr(&b, "SELECT 1");
    expect_protocol_violation("query length 0x7ffffff0", true, &b);
    mb_free(&b);

    mb_bytes(&b, "S", 1); /* a Sync (no body) claiming 100000 bytes */
    mb_u32(&b, 100000);
    expect_protocol_violation("sync length 100000", true, &b);
    mb_free(&b);

    mb_bytes(&b, "Q", 1); /* a length that does not even cover itself */
    mb_u32(&b, 3);
    expect_protocol_violation("query length 3", true, &b);
    mb_free(&b);

    mb_begin(&b, 0); /* a StartupMessage without the terminating empty name */
    mb_u32(&b, 196608u);
    mb_cstr(&b, "user");
    mb_cstr(&b, "tester");
    mb_end(&b);
    expect_protocol_violation("startup without terminator", false, &b);
    mb_free(&b);

    close_bystander();
}

int main(int argc, char **argv)
{
    alarm(200); /* last resort: a hang kills the test, it never passes */
    if (argc < 2) {
        fprintf(stderr, "usage: errors auth|wait-timeout|max-conn|server DB NEEDLE|malformed\n");
        return 2;
    }
    port = atoi(mini_env("MESH_PORT"));
    good = mini_env("TOK_GOOD");
    if (strcmp(argv[1], "auth") == 0)
        case_auth();
    else if (strcmp(argv[1], "wait-timeout") == 0)
        case_wait_timeout();
    else if (strcmp(argv[1], "max-conn") == 0)
        case_max_conn();
    else if (strcmp(argv[1], "server") == 0 && argc == 4)
        case_server(argv[2], argv[3]);
    else if (strcmp(argv[1], "malformed") == 0)
        case_malformed();
    else {
        fprintf(stderr, "unknown case %s\n", argv[1]);
        return 2;
    }
    printf("errors %s: %s (%d failures)\n", argv[1], mini_failures ? "FAILED" : "PASSED",
           mini_failures);
    return mini_failures ? 1 : 0;
}
