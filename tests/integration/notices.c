/* notices: asynchronous server messages through pgmesh, for test_notices.sh.
 *   notices listen CHANNEL COUNT  (session pooling) LISTEN CHANNEL, print "listening", then send
 *                                 nothing and wait (30 s at most) for COUNT NotificationResponses,
 *                                 each printed as "channel|payload"; then the connection must still
 *                                 answer a query
 *   notices extended N            (transaction pooling) SELECT core.notice_row($1) through the
 *                                 extended protocol for 1..N: each must bring its row and, before
 *                                 it, its NoticeResponse "row $1 for <tenant>"
 * Env: MESH_PORT, TOKEN, TENANT (extended). */
#define _GNU_SOURCE
#include "mini.h"

static int do_listen(const char *channel, int count)
{
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOKEN"));
    char *ident = PQescapeIdentifier(c, channel, strlen(channel));
    char sql[256];
    snprintf(sql, sizeof sql, "LISTEN %s", ident ? ident : "\"\"");
    PQfreemem(ident);
    PGresult *res = mini_exec(c, sql, 10000);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "FAIL %s: %s\n", sql, res ? PQresultErrorMessage(res) : "timeout");
        return 1;
    }
    PQclear(res);
    printf("listening\n");
    fflush(stdout);

    /* Idle: whatever arrives now comes unasked, relayed by pgmesh while the client sends nothing. */
    int got = 0;
    int64_t deadline = mini_now_ms() + 30000;
    while (got < count && mini_now_ms() < deadline) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(deadline - mini_now_ms()));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        if (!PQconsumeInput(c)) {
            fprintf(stderr, "FAIL connection lost while listening: %s", PQerrorMessage(c));
            return 1;
        }
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            printf("%s|%s\n", n->relname, n->extra);
            fflush(stdout);
            got++;
            PQfreemem(n);
        }
    }
    CHECK(got == count, "listen: %d notifications in 30 s, want %d", got, count);
    res = mini_exec(c, "SELECT 1", 10000);
    CHECK(res && PQresultStatus(res) == PGRES_TUPLES_OK, "listen: no answer after the notifications: %s",
          res ? PQresultErrorMessage(res) : "timeout");
    PQclear(res);
    PQfinish(c);
    return 0;
}

/* Notices so far; each must name the statement after the last one answered. */
struct notice_log {
    int n;
    int rows;
    bool in_order;
};

static void on_notice(void *arg, const PGresult *res)
{
    struct notice_log *log = arg;
    char want[64];
    log->n++;
    snprintf(want, sizeof want, "row %d for %s", log->rows + 1, mini_env("TENANT"));
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (msg == NULL || strcmp(msg, want) != 0) {
        log->in_order = false;
        fprintf(stderr, "FAIL notice %d: [%s], want [%s]\n", log->n, msg ? msg : "", want);
    }
}

static int do_extended(int n)
{
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOKEN"));
    struct notice_log log = {.in_order = true};
    PQsetNoticeReceiver(c, on_notice, &log);
    for (int i = 1; i <= n; i++) {
        char arg[16];
        snprintf(arg, sizeof arg, "%d", i);
        const char *params[1] = {arg};
        PGresult *res = mini_exec_params(c, "SELECT core.notice_row($1::int)", 1, params, 10000);
        bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                  strcmp(PQgetvalue(res, 0, 0), arg) == 0;
        CHECK(ok, "extended: SELECT core.notice_row(%d): %s", i,
              res && PQresultStatus(res) != PGRES_TUPLES_OK ? PQresultErrorMessage(res) : "wrong row");
        PQclear(res);
        CHECK(log.n == i, "extended: %d notices after %d statements", log.n, i);
        log.rows = i;
    }
    CHECK(log.in_order, "extended: notices out of order or wrong");
    printf("extended: %d statements, %d notices\n", n, log.n);
    PQfinish(c);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(90); /* last resort: a hang kills the test, it never passes */
    int st = 2;
    if (argc == 4 && strcmp(argv[1], "listen") == 0)
        st = do_listen(argv[2], atoi(argv[3]));
    else if (argc == 3 && strcmp(argv[1], "extended") == 0)
        st = do_extended(atoi(argv[2]));
    else
        fprintf(stderr, "usage: notices listen CHANNEL COUNT | extended N\n");
    if (st == 0 && mini_failures)
        st = 1;
    return st;
}
