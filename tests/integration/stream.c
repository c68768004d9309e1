/* stream: results and messages far larger than pgmesh's buffers, through pgmesh, for
 * test_stream.sh. pgmesh must relay them as streams; the shell checks its memory afterwards.
 *   stream select N           SELECT g, md5(g::text) over 1..N in libpq's single-row mode, rows
 *                             printed to stdout exactly as psql -A -t prints them ("g|md5"), so
 *                             the shell can compare with psql through pgmesh and straight to PG
 *   stream bind MIB           one binary bytea parameter of MIB MiB: SELECT length($1), md5($1)
 *                             checked against md5sum of the same bytes, unnamed and through
 *                             a named statement, then SELECT $1 echoed back whole in binary and
 *                             compared byte for byte
 *   stream copydata MIB TABLE one CopyData message of MIB MiB (four long lines) into TABLE (note),
 *                             then count, lengths, md5 and the tenant column checked server side
 *   stream copyfail TABLE     COPY TABLE (note) FROM STDIN ended by CopyFail: 57014 with the
 *                             client's reason, no row kept, the next statement has its claims
 * Env: MESH_PORT, TOKEN, TENANT (the token's tenant claim). */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "mini.h"

#define STEP_LIMIT_MS 60000

/* The same bytes on every run, every byte value included (xorshift64). */
static void fill_bytes(unsigned char *p, size_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 32);
    }
}

/* md5 of p as md5sum computes it, so the check does not rest on anything PostgreSQL said. The
 * harness links these programs with libpq alone; md5sum is in coreutils. */
static bool local_md5(const void *p, size_t n, char out[33])
{
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execlp("md5sum", "md5sum", (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    bool ok = true;
    for (size_t off = 0; ok && off < n;) {
        ssize_t w = write(to[1], (const char *)p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += w > 0 ? (size_t)w : 0;
    }
    close(to[1]);
    char line[64] = {0};
    size_t got = 0;
    while (ok && got < 32) {
        ssize_t r = read(from[0], line + got, sizeof line - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        ok = r > 0;
        got += r > 0 ? (size_t)r : 0;
    }
    close(from[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!ok || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return false;
    memcpy(out, line, 32);
    out[32] = '\0';
    return true;
}

static int do_select(long n)
{
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOKEN"));
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT g, md5(g::text) FROM generate_series(1, %ld) g", n);
    CHECK(PQsendQuery(c, sql) && PQsetSingleRowMode(c), "send failed: %s", PQerrorMessage(c));
    long rows = 0;
    ExecStatusType last = PGRES_FATAL_ERROR;
    int64_t deadline = mini_now_ms() + STEP_LIMIT_MS;
    for (;;) {
        /* Only when libpq needs more bytes: reading ahead of the rows consumed makes libpq move its
         * ever larger unread input on every call (quadratic). */
        if (PQisBusy(c) && !mini_pq_wait(c, deadline)) {
            CHECK(false, "select: timed out after %ld rows", rows);
            break;
        }
        PGresult *res = PQgetResult(c);
        if (res == NULL)
            break;
        last = PQresultStatus(res);
        if (last == PGRES_SINGLE_TUPLE) {
            rows++;
            printf("%s|%s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        } else if (last != PGRES_TUPLES_OK) {
            CHECK(false, "select: %s %s", mini_sqlstate(res), PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    CHECK(last == PGRES_TUPLES_OK && rows == n, "select: %ld rows, want %ld (last status %s)", rows, n,
          PQresStatus(last));
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE, "select: not idle afterwards");
    PQfinish(c);
    return 0;
}

/* Checks one "SELECT length($1), md5($1)" result against what was sent. */
static void check_len_md5(PGresult *res, size_t len, const char *want_md5, const char *what)
{
    char want[64], got[64] = "";
    snprintf(want, sizeof want, "%zu|%s", len, want_md5);
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        snprintf(got, sizeof got, "%s|%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    CHECK(strcmp(got, want) == 0, "%s: length|md5 on the server [%s], sent [%s] (%s)", what, got, want,
          res ? PQresultErrorMessage(res) : "timeout");
    PQclear(res);
}

static int do_bind(size_t mib)
{
    size_t len = mib << 20;
    unsigned char *buf = malloc(len);
    char want_md5[33];
    if (buf == NULL) {
        fprintf(stderr, "FAIL out of memory for %zu MiB\n", mib);
        return 1;
    }
    fill_bytes(buf, len);
    if (!local_md5(buf, len, want_md5)) {
        fprintf(stderr, "FAIL md5sum did not run\n");
        return 1;
    }
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOKEN"));
    const Oid types[1] = {17}; /* bytea */
    const char *values[1] = {(const char *)buf};
    const int lengths[1] = {(int)len}, formats[1] = {1};

    int64_t t0 = mini_now_ms();
    CHECK(PQsendQueryParams(c, "SELECT length($1), md5($1)", 1, types, values, lengths, formats, 0),
          "bind: send failed: %s", PQerrorMessage(c));
    check_len_md5(mini_last_result(c, STEP_LIMIT_MS), len, want_md5, "bind (unnamed)");
    mini_note("bind: %zu MiB parameter in %lld ms, md5 %s", mib, (long long)(mini_now_ms() - t0),
              want_md5);

    /* The same through a named statement prepared in an earlier transaction: pgmesh rewrites the
     * Bind's head for whichever server runs it, and must still stream the rest. */
    PGresult *res = PQprepare(c, "big_param", "SELECT length($1), md5($1)", 1, types);
    CHECK(res && PQresultStatus(res) == PGRES_COMMAND_OK, "prepare: %s", res ? PQresultErrorMessage(res) : "failed");
    PQclear(res);
    t0 = mini_now_ms();
    CHECK(PQsendQueryPrepared(c, "big_param", 1, values, lengths, formats, 0), "bind named: send failed: %s",
          PQerrorMessage(c));
    check_len_md5(mini_last_result(c, STEP_LIMIT_MS), len, want_md5, "bind (named)");
    mini_note("bind: %zu MiB parameter to a named statement in %lld ms", mib, (long long)(mini_now_ms() - t0));

    /* The same bytes back as one DataRow of the same size. */
    t0 = mini_now_ms();
    CHECK(PQsendQueryParams(c, "SELECT $1", 1, types, values, lengths, formats, 1),
          "echo: send failed: %s", PQerrorMessage(c));
    res = mini_last_result(c, STEP_LIMIT_MS);
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    CHECK(ok, "echo: SELECT $1 failed: %s", res ? PQresultErrorMessage(res) : "timeout");
    if (ok) {
        size_t got = (size_t)PQgetlength(res, 0, 0);
        CHECK(got == len && memcmp(PQgetvalue(res, 0, 0), buf, len) == 0,
              "echo: %zu bytes came back, not the %zu sent", got, len);
    }
    PQclear(res);
    mini_note("echo: %zu MiB DataRow in %lld ms", mib, (long long)(mini_now_ms() - t0));
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE, "bind: not idle afterwards");
    PQfinish(c);
    free(buf);
    return 0;
}

/* Sends COPY TABLE (note) FROM STDIN and waits for the CopyInResponse. One result only:
 * PQgetResult keeps returning COPY_IN until the copy ends, so mini_exec, which collects results
 * until NULL, would never return. */
static bool start_copy_in(PGconn *c, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "COPY %s (note) FROM STDIN", table);
    PGresult *res = NULL;
    if (PQsendQuery(c, sql) && mini_pq_wait(c, mini_now_ms() + STEP_LIMIT_MS))
        res = PQgetResult(c);
    bool ok = res && PQresultStatus(res) == PGRES_COPY_IN;
    CHECK(ok, "%s: no CopyInResponse: %s", sql, res ? PQresultErrorMessage(res) : "timeout");
    PQclear(res);
    return ok;
}

/* Four lines of letters, each a quarter of the message: long COPY lines, no escapes. */
#define COPY_LINES 4

static int do_copydata(size_t mib, const char *table)
{
    size_t len = mib << 20, line = len / COPY_LINES;
    char *buf = malloc(len), want_md5[33];
    if (buf == NULL) {
        fprintf(stderr, "FAIL out of memory for %zu MiB\n", mib);
        return 1;
    }
    fill_bytes((unsigned char *)buf, len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (i + 1) % line == 0 ? '\n' : (char)('a' + (unsigned char)buf[i] % 26);
    if (!local_md5(buf, len, want_md5)) {
        fprintf(stderr, "FAIL md5sum did not run\n");
        return 1;
    }
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOKEN"));
    int64_t t0 = mini_now_ms();
    if (!start_copy_in(c, table))
        return 1;
    /* libpq sends each PQputCopyData call as one CopyData message, however long. */
    CHECK(PQputCopyData(c, buf, (int)len) == 1 && PQputCopyEnd(c, NULL) == 1, "copydata: send failed: %s",
          PQerrorMessage(c));
    PGresult *res = mini_last_result(c, STEP_LIMIT_MS);
    CHECK(res && PQresultStatus(res) == PGRES_COMMAND_OK, "copydata: COPY failed: %s",
          res ? PQresultErrorMessage(res) : "timeout");
    PQclear(res);
    mini_note("copydata: one %zu MiB CopyData in %lld ms, md5 %s", mib, (long long)(mini_now_ms() - t0),
              want_md5);

    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*), sum(length(note)), md5(string_agg(note, E'\\n' ORDER BY id) || E'\\n'),"
             " count(*) FILTER (WHERE tenant = $1)"
             " FROM %s",
             table);
    const char *tenant[1] = {mini_env("TENANT")};
    res = mini_exec_params(c, sql, 1, tenant, STEP_LIMIT_MS);
    char want[128];
    snprintf(want, sizeof want, "%d|%zu|%s|%d", COPY_LINES, len - COPY_LINES, want_md5, COPY_LINES);
    char got[128] = "";
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        snprintf(got, sizeof got, "%s|%s|%s|%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                 PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
    CHECK(strcmp(got, want) == 0, "copydata: rows|chars|md5|rows of tenant %s: got [%s], want [%s] (%s)",
          tenant[0], got, want, res ? PQresultErrorMessage(res) : "timeout");
    PQclear(res);
    PQfinish(c);
    free(buf);
    return 0;
}

/* A client that gives up mid-COPY with CopyFail: PostgreSQL's error carries the client's reason,
 * no row is kept, and the connection serves the next transaction with the token's claims. */
static int do_copyfail(const char *table)
{
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOKEN"));
    if (!start_copy_in(c, table))
        return 1;
    CHECK(PQputCopyData(c, "never kept\n", 11) == 1 && PQputCopyEnd(c, "client gave up") == 1,
          "copyfail: send failed: %s", PQerrorMessage(c));
    PGresult *res = mini_last_result(c, STEP_LIMIT_MS);
    CHECK(res && strcmp(mini_sqlstate(res), "57014") == 0 &&
              strstr(PQresultErrorMessage(res), "client gave up") != NULL,
          "copyfail: want 57014 naming the client's reason, got %s %s", mini_sqlstate(res),
          res ? PQresultErrorMessage(res) : "timeout");
    PQclear(res);
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE, "copyfail: not idle after the failed COPY");
    char why[600];
    res = mini_exec(c, MINI_CLAIMS_SQL, STEP_LIMIT_MS);
    CHECK(mini_claims_ok(res, mini_env("TENANT"), "regional_analyst", why, sizeof why),
          "copyfail: next statement: %s", why);
    PQclear(res);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE note = 'never kept'", table);
    res = mini_exec(c, sql, STEP_LIMIT_MS);
    CHECK(res && PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "0") == 0,
          "copyfail: the failed COPY's row was kept: %s",
          res && PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(150); /* last resort: a hang kills the test, it never passes */
    int st = 2;
    if (argc == 3 && strcmp(argv[1], "select") == 0)
        st = do_select(atol(argv[2]));
    else if (argc == 3 && strcmp(argv[1], "bind") == 0)
        st = do_bind((size_t)atol(argv[2]));
    else if (argc == 4 && strcmp(argv[1], "copydata") == 0)
        st = do_copydata((size_t)atol(argv[2]), argv[3]);
    else if (argc == 3 && strcmp(argv[1], "copyfail") == 0)
        st = do_copyfail(argv[2]);
    else
        fprintf(stderr, "usage: stream select N | bind MIB | copydata MIB TABLE | copyfail TABLE\n");
    fflush(stdout);
    if (st == 0 && mini_failures)
        st = 1;
    return st;
}
