/* dirty: a client that dies mid-transaction, mid-query, mid-COPY or between Bind and Sync must
 * not leave its server connection dirty. With a pool of one, the next clients (another tenant,
 * then the dead client's own tenant) must find an idle connection, their own claims, and none of
 * the dead client's uncommitted rows; PostgreSQL must show no backend left in a transaction.
 * Usage: dirty tx-fin | tx-rst | mid-query | extended-nosync | copy-rst | copy-fin
 * Env: MESH_PORT, TOK_DE, TOK_FR (regional_analyst), PG_SOCKET_DIR, PG_PORT (superuser observer
 * straight to PostgreSQL). */
#define _GNU_SOURCE
#include "mini.h"

static int port;
static PGconn *observer;
static char marker[96];

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

static long observe_count(const char *sql, int nparams, const char *const *params)
{
    PGresult *res = mini_exec_params(observer, sql, nparams, params, 10000);
    long n = -1;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        n = atol(PQgetvalue(res, 0, 0));
    else
        fprintf(stderr, "observer query failed: %s\n", res ? PQresultErrorMessage(res) : "timeout");
    PQclear(res);
    return n;
}

/* Backends of the test database in a transaction or still busy, other than the observer. */
#define BUSY_SQL                                                                                   \
    "SELECT count(*) FROM pg_stat_activity WHERE datname = 'media_analytics'"                     \
    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"                            \
    " AND (state LIKE 'idle in transaction%' OR state = 'active')"

/* Reads backend messages until one of type want (or an ErrorResponse) arrives. */
static bool read_until_type(int fd, char want, struct mini_error *e)
{
    int64_t deadline = mini_now_ms() + 10000;
    for (;;) {
        struct mini_msg m;
        if (mini_read_msg(fd, &m, deadline) != MINI_READ_OK)
            return false;
        char t = m.type;
        if (t == 'E')
            mini_error_parse(&m, e);
        free(m.body);
        if (t == want)
            return true;
        if (t == 'E')
            return false;
    }
}

static bool raw_simple(struct mini_session *s, const char *sql, char want_status)
{
    struct mini_error e;
    memset(&e, 0, sizeof e);
    if (!mini_raw_query(s, sql))
        return false;
    enum mini_login l = mini_read_until_ready(s, &e, mini_now_ms() + 10000, false);
    CHECK(l == MINI_LOGIN_READY && e.sqlstate[0] == 0 && s->tx_status == want_status,
          "dying client: \"%s\" ended %s, error '%s' \"%s\", status '%c' (want '%c')", sql,
          mini_login_name(l), e.sqlstate, e.message, s->tx_status, want_status);
    return l == MINI_LOGIN_READY;
}

/* The client that dies. Every variant has written something it never commits. */
static void die(const char *kind)
{
    struct mini_session s;
    struct mini_error e;
    enum mini_login l = mini_login(port, "media_analytics", mini_env("TOK_DE"), &s, &e, NULL);
    if (l != MINI_LOGIN_READY) {
        fprintf(stderr, "FAIL dying client cannot log in: %s %s %s\n", mini_login_name(l),
                e.sqlstate, e.message);
        exit(1);
    }
    char sql[256];
    struct mini_buf b = {0};
    if (strncmp(kind, "tx-", 3) == 0 || strcmp(kind, "mid-query") == 0) {
        snprintf(sql, sizeof sql, "INSERT INTO core.scratch (note) VALUES ('%s')", marker);
        raw_simple(&s, "BEGIN", 'T');
        raw_simple(&s, sql, 'T');
        raw_simple(&s, MINI_CLAIMS_SQL, 'T');
        if (strcmp(kind, "mid-query") == 0) {
            CHECK(mini_raw_query(&s, "SELECT pg_sleep(3)"), "send failed");
            mini_sleep_ms(500);
        }
    } else if (strcmp(kind, "extended-nosync") == 0) {
        /* Parse, Bind, Execute of an INSERT, then no Sync: the server holds an implicit
         * transaction open and waits for the rest. */
        snprintf(sql, sizeof sql, "INSERT INTO core.scratch (note) VALUES ('%s')", marker);
        mb_begin(&b, 'P');
        mb_cstr(&b, "");
        mb_cstr(&b, sql);
        mb_bytes(&b, "\0\0", 2);
        mb_end(&b);
        mb_begin(&b, 'B');
        mb_cstr(&b, "");
        mb_cstr(&b, "");
        mb_bytes(&b, "\0\0\0\0\0\0", 6); /* no formats, no parameters, no result formats */
        mb_end(&b);
        mb_begin(&b, 'E');
        mb_cstr(&b, "");
        mb_u32(&b, 0);
        mb_end(&b);
        mb_begin(&b, 'H'); /* Flush, so the server runs it now */
        mb_end(&b);
        CHECK(mini_send(s.fd, &b), "send failed");
        CHECK(read_until_type(s.fd, 'C', &e), "INSERT without Sync: no CommandComplete (%s %s)",
              e.sqlstate, e.message);
    } else { /* copy-rst, copy-fin */
        snprintf(sql, sizeof sql, "COPY core.role_scratch (note) FROM STDIN");
        CHECK(mini_raw_query(&s, sql), "send failed");
        CHECK(read_until_type(s.fd, 'G', &e), "no CopyInResponse (%s %s)", e.sqlstate, e.message);
        char row[128];
        snprintf(row, sizeof row, "%s\n", marker);
        mb_begin(&b, 'd');
        mb_bytes(&b, row, strlen(row));
        mb_end(&b);
        CHECK(mini_send(s.fd, &b), "CopyData send failed");
        mini_sleep_ms(200);
    }
    mb_free(&b);
    if (strcmp(kind, "tx-fin") == 0 || strcmp(kind, "copy-fin") == 0)
        close(s.fd);
    else
        mini_close_abort(s.fd);
}

/* A client after the dead one: idle, its own claims, no trace of the dead client's writes. */
static void next_client(const char *tenant, const char *tok_env)
{
    char what[64], why[600];
    snprintf(what, sizeof what, "next client (%s)", tenant);
    PGconn *c = mini_pq_connect(port, "media_analytics", mini_env(tok_env));
    if (PQstatus(c) != CONNECTION_OK) {
        CHECK(false, "%s cannot connect: %s", what, PQerrorMessage(c));
        PQfinish(c);
        return;
    }
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE, "%s: not idle after connecting", what);
    PGresult *res = mini_exec(c, MINI_CLAIMS_SQL, 20000);
    CHECK(mini_claims_ok(res, tenant, "regional_analyst", why, sizeof why), "%s: %s", what, why);
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE, "%s: status %d after one statement, want idle",
          what, (int)PQtransactionStatus(c));
    PQclear(res);
    const char *param[1] = {marker};
    res = mini_exec_params(c,
                           "SELECT (SELECT count(*) FROM core.scratch WHERE note = $1)"
                           " + (SELECT count(*) FROM core.role_scratch WHERE note = $1)",
                           1, param, 10000);
    CHECK(res && PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "0") == 0,
          "%s sees the dead client's uncommitted rows: %s", what,
          res && PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0)
                                                        : PQresultErrorMessage(res));
    PQclear(res);
    res = mini_exec(c, "BEGIN; SELECT 1", 10000);
    CHECK(PQtransactionStatus(c) == PQTRANS_INTRANS, "%s: BEGIN did not open a transaction", what);
    PQclear(res);
    res = mini_exec(c, "COMMIT", 10000);
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE, "%s: not idle after COMMIT", what);
    PQclear(res);
    PQfinish(c);
}

int main(int argc, char **argv)
{
    alarm(120); /* last resort: a hang kills the test, it never passes */
    if (argc != 2) {
        fprintf(stderr, "usage: dirty tx-fin|tx-rst|mid-query|extended-nosync|copy-rst|copy-fin\n");
        return 2;
    }
    const char *kind = argv[1];
    port = atoi(mini_env("MESH_PORT"));
    snprintf(marker, sizeof marker, "dirty-%s-%ld", kind, (long)getpid());
    connect_observer();

    die(kind);

    /* pgmesh sees the close and rolls back or drops the server connection; allow it 10 s. */
    long busy = -1;
    for (int64_t end = mini_now_ms() + 10000; mini_now_ms() < end; mini_sleep_ms(100)) {
        busy = observe_count(BUSY_SQL, 0, NULL);
        if (busy == 0)
            break;
    }
    CHECK(busy == 0, "%s: %ld backends still in a transaction or busy 10 s after the client died",
          kind, busy);
    if (busy != 0) {
        PGresult *res = mini_exec(observer,
                                  "SELECT pid, usename, state, left(query, 60) FROM pg_stat_activity"
                                  " WHERE datname = 'media_analytics' AND pid <> pg_backend_pid()",
                                  10000);
        for (int i = 0; res && i < PQntuples(res); i++)
            fprintf(stderr, "  backend %s %s [%s] %s\n", PQgetvalue(res, i, 0),
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
        PQclear(res);
    }
    const char *param[1] = {marker};
    long rows = observe_count("SELECT (SELECT count(*) FROM core.scratch WHERE note = $1)"
                              " + (SELECT count(*) FROM core.role_scratch WHERE note = $1)",
                              1, param);
    CHECK(rows == 0, "%s: %ld rows of the dead client's transaction were committed", kind, rows);

    next_client("FR", "TOK_FR");
    next_client("DE", "TOK_DE");
    PQfinish(observer);
    printf("dirty %s: %s (%d failures)\n", kind, mini_failures ? "FAILED" : "PASSED",
           mini_failures);
    return mini_failures ? 1 : 0;
}
