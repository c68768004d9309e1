/* cancel: PQcancel through pgmesh cancels that client's running query (57014) and nothing else;
 * a CancelRequest with a wrong key does nothing; a cancel from a client with no query running
 * must not reach the server connection another client is now using.
 * Usage: cancel basic (pool of 2) | cancel stale (pool of 1)
 * Env: MESH_PORT, TOK_GOOD (tenant DE, regional_analyst), PG_SOCKET_DIR and PG_PORT (a superuser
 * observer connection straight to PostgreSQL, to see when a query is really running). */
#define _GNU_SOURCE
#include "mini.h"

static int port;
static const char *good;
static PGconn *observer;

static PGconn *connect_good(const char *who)
{
    PGconn *c = mini_pq_connect(port, "media_analytics", good);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "FAIL %s cannot connect: %s", who, PQerrorMessage(c));
        exit(1);
    }
    return c;
}

static void connect_observer(void)
{
    const char *const keys[] = {"host", "port", "dbname", "user", "connect_timeout", NULL};
    const char *const vals[] = {mini_env("PG_SOCKET_DIR"), mini_env("PG_PORT"), "media_analytics",
                                "postgres", "10", NULL};
    observer = PQconnectdbParams(keys, vals, 0);
    if (PQstatus(observer) != CONNECTION_OK) {
        fprintf(stderr, "FAIL observer cannot connect: %s", PQerrorMessage(observer));
        exit(1);
    }
}

/* Waits (up to 10 s) until a backend is active running a query containing marker. */
static bool wait_running(const char *marker)
{
    const char *param[1] = {marker};
    for (int64_t end = mini_now_ms() + 10000; mini_now_ms() < end; mini_sleep_ms(50)) {
        PGresult *res = mini_exec_params(
            observer,
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
            " AND pid <> pg_backend_pid() AND strpos(query, $1) > 0",
            1, param, 10000);
        bool found = res && PQresultStatus(res) == PGRES_TUPLES_OK && atoi(PQgetvalue(res, 0, 0)) > 0;
        PQclear(res);
        if (found)
            return true;
    }
    return false;
}

static void check_claims(PGconn *conn, const char *what)
{
    char why[600];
    PGresult *res = mini_exec(conn, MINI_CLAIMS_SQL, 10000);
    CHECK(mini_claims_ok(res, "DE", "regional_analyst", why, sizeof why), "%s: %s", what, why);
    PQclear(res);
    CHECK(PQtransactionStatus(conn) == PQTRANS_IDLE, "%s: not idle afterwards", what);
}

/* Sends a long sleep on a (simple or extended), cancels it with PQcancel, expects 57014. */
static void cancel_one(PGconn *a, bool extended, bool in_tx, const char *what)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_sleep(30) /* cancel-%s */", what);
    const char *param[1] = {"30"};
    if (in_tx) {
        PGresult *r = mini_exec(a, "BEGIN", 10000);
        CHECK(r && PQresultStatus(r) == PGRES_COMMAND_OK, "%s: BEGIN failed", what);
        PQclear(r);
    }
    bool sent = extended ? PQsendQueryParams(a, "SELECT pg_sleep($1::float8) /* cancel-x */", 1,
                                             NULL, param, NULL, NULL, 0)
                         : PQsendQuery(a, sql);
    CHECK(sent, "%s: send failed", what);
    char marker[64];
    snprintf(marker, sizeof marker, "cancel-%s", extended ? "x" : what);
    CHECK(wait_running(marker), "%s: the query never showed as active", what);

    PGcancel *pc = PQgetCancel(a);
    char err[256] = "";
    int64_t t0 = mini_now_ms();
    int ok = pc ? PQcancel(pc, err, sizeof err) : 0;
    PQfreeCancel(pc);
    CHECK(ok, "%s: PQcancel failed: %s", what, err);

    struct mini_results r;
    mini_collect(a, 10000, &r);
    CHECK(!r.timed_out, "%s: query still running 10 s after the cancel", what);
    bool got = false;
    for (int i = 0; i < r.n; i++)
        got |= PQresultStatus(r.res[i]) == PGRES_FATAL_ERROR &&
               strcmp(mini_sqlstate(r.res[i]), "57014") == 0;
    CHECK(got, "%s: no 57014 (first result %s %s)", what,
          r.n ? PQresStatus(PQresultStatus(r.res[0])) : "none",
          r.n ? PQresultErrorMessage(r.res[0]) : "");
    mini_note("%s: cancelled after %lld ms", what, (long long)(mini_now_ms() - t0));
    mini_results_clear(&r);
    if (r.timed_out)
        exit(1); /* the connection is unusable: stop here rather than cascade */
    if (in_tx) {
        CHECK(PQtransactionStatus(a) == PQTRANS_INERROR, "%s: not in a failed transaction", what);
        PGresult *rb = mini_exec(a, "ROLLBACK", 10000);
        CHECK(rb && PQresultStatus(rb) == PGRES_COMMAND_OK, "%s: ROLLBACK failed", what);
        PQclear(rb);
    }
    char after[128];
    snprintf(after, sizeof after, "%s: same client after the cancel", what);
    check_claims(a, after);
}

/* A raw session: a wrong key (or pid) does nothing; the right key, read from pgmesh's
 * BackendKeyData, cancels. */
static void raw_keys(void)
{
    struct mini_session s;
    struct mini_error e;
    enum mini_login l = mini_login(port, "media_analytics", good, &s, &e, NULL);
    if (l != MINI_LOGIN_READY) {
        CHECK(false, "raw login: %s %s %s", mini_login_name(l), e.sqlstate, e.message);
        return;
    }
    CHECK(s.pid != 0 || s.key != 0, "pgmesh sent no BackendKeyData");

    CHECK(mini_raw_query(&s, "SELECT pg_sleep(2) /* wrong-key */"), "raw send failed");
    CHECK(wait_running("wrong-key"), "wrong key: the query never showed as active");
    CHECK(mini_raw_cancel(port, s.pid, s.key ^ 0x5a5a5a5au), "cannot send the wrong-key cancel");
    CHECK(mini_raw_cancel(port, s.pid + 7919u, s.key), "cannot send the wrong-pid cancel");
    memset(&e, 0, sizeof e);
    l = mini_read_until_ready(&s, &e, mini_now_ms() + 15000, false);
    CHECK(l == MINI_LOGIN_READY && e.sqlstate[0] == 0,
          "wrong key: query ended %s with error %s \"%s\"; it should have completed",
          mini_login_name(l), e.sqlstate, e.message);

    CHECK(mini_raw_query(&s, "SELECT pg_sleep(30) /* right-key */"), "raw send failed");
    CHECK(wait_running("right-key"), "right key: the query never showed as active");
    CHECK(mini_raw_cancel(port, s.pid, s.key), "cannot send the cancel");
    memset(&e, 0, sizeof e);
    l = mini_read_until_ready(&s, &e, mini_now_ms() + 10000, false);
    CHECK(l == MINI_LOGIN_READY && strcmp(e.sqlstate, "57014") == 0,
          "right key: %s with error '%s' \"%s\", want 57014", mini_login_name(l), e.sqlstate,
          e.message);
    close(s.fd);
}

static void case_basic(void)
{
    PGconn *a = connect_good("A"), *b = connect_good("B");
    cancel_one(a, false, false, "simple");
    cancel_one(a, true, false, "extended");
    cancel_one(a, false, true, "in-transaction");

    /* B's query on the other server connection survives A's cancel. */
    CHECK(PQsendQuery(b, "SELECT pg_sleep(3) /* bystander */"), "B: send failed");
    CHECK(wait_running("bystander"), "B: query never showed as active");
    cancel_one(a, false, false, "while-B-runs");
    struct mini_results r;
    mini_collect(b, 15000, &r);
    CHECK(!r.timed_out && r.n == 1 && PQresultStatus(r.res[0]) == PGRES_TUPLES_OK,
          "B: its query did not complete normally: %s",
          r.n ? PQresultErrorMessage(r.res[0]) : "timeout");
    mini_results_clear(&r);
    check_claims(b, "B after A's cancels");

    raw_keys();
    check_claims(a, "A at the end");
    PQfinish(a);
    PQfinish(b);
}

/* Pool of one: A ran a query and is idle (no server); B now runs a long query on the only server
 * connection. A's cancel must not cancel B's query. */
static void case_stale(void)
{
    PGconn *a = connect_good("A"), *b = connect_good("B");
    check_claims(a, "A before");
    CHECK(PQsendQuery(b, "SELECT pg_sleep(3) /* stale-victim */"), "B: send failed");
    CHECK(wait_running("stale-victim"), "B: query never showed as active");
    PGcancel *pc = PQgetCancel(a);
    char err[256] = "";
    int ok = pc ? PQcancel(pc, err, sizeof err) : 0;
    PQfreeCancel(pc);
    CHECK(ok, "A: PQcancel failed: %s", err);
    struct mini_results r;
    mini_collect(b, 15000, &r);
    CHECK(!r.timed_out && r.n == 1 && PQresultStatus(r.res[0]) == PGRES_TUPLES_OK,
          "B's query was hit by A's cancel: %s %s",
          r.n ? PQresStatus(PQresultStatus(r.res[0])) : "timeout",
          r.n ? PQresultErrorMessage(r.res[0]) : "");
    mini_results_clear(&r);
    check_claims(a, "A after its idle cancel");
    check_claims(b, "B after A's idle cancel");
    PQfinish(a);
    PQfinish(b);
}

int main(int argc, char **argv)
{
    alarm(200); /* last resort: a hang kills the test, it never passes */
    if (argc != 2) {
        fprintf(stderr, "usage: cancel basic|stale\n");
        return 2;
    }
    port = atoi(mini_env("MESH_PORT"));
    good = mini_env("TOK_GOOD");
    connect_observer();
    if (strcmp(argv[1], "basic") == 0)
        case_basic();
    else if (strcmp(argv[1], "stale") == 0)
        case_stale();
    else
        return 2;
    PQfinish(observer);
    printf("cancel %s: %s (%d failures)\n", argv[1], mini_failures ? "FAILED" : "PASSED",
           mini_failures);
    return mini_failures ? 1 : 0;
}
