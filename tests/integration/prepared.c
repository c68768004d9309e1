/* Named prepared statements in transaction pooling, through pgmesh with a pool of one server
 * connection and max_prepared_statements = 3 (test_prepared.sh): two clients using the same names
 * for different statements, PostgreSQL's own errors for duplicate, unknown and malformed
 * statements (with the client's names in them), Describe before Bind on a server connection that
 * lacks the statement, eviction and re-preparation, sharing of one server-side statement, errors
 * inside pipelines (failed and skipped Parses are forgotten, not half-remembered), DEALLOCATE and
 * the Close message. Every statement reports the token's tenant, so the claims are checked too.
 * Env: MESH_PORT, TOK_DE, TOK_FR, PG_DSN (superuser straight to PostgreSQL, for its own errors). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include "mini.h"

#define T_MS 10000

static int port;

static PGresult *prepare(PGconn *c, const char *name, const char *sql)
{
    if (!PQsendPrepare(c, name, sql, 0, NULL))
        return NULL;
    return mini_last_result(c, T_MS);
}

static PGresult *run(PGconn *c, const char *name, const char *arg)
{
    const char *params[1] = {arg};
    if (!PQsendQueryPrepared(c, name, arg ? 1 : 0, arg ? params : NULL, NULL, NULL, 0))
        return NULL;
    return mini_last_result(c, T_MS);
}

static void expect_ok(PGresult *r, const char *what)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    CHECK(r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK), "%s: %s", what,
          r ? PQresultErrorMessage(r) : "timeout");
    PQclear(r);
}

/* The one value of a statement's result, or "" (with a failure) when there is none. */
static void expect_value(PGresult *r, const char *want, const char *what)
{
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    const char *got = ok ? PQgetvalue(r, 0, 0) : "";
    CHECK(ok && strcmp(got, want) == 0, "%s: want '%s', got '%s' %s", what, want, got,
          r ? PQresultErrorMessage(r) : "(timeout)");
    PQclear(r);
}

/* Server-side names (pgmesh_...) must never show, but where the message is about them. */
static void expect_error(PGresult *r, const char *sqlstate, const char *message, const char *what)
{
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    CHECK(r && strcmp(mini_sqlstate(r), sqlstate) == 0 && msg && strstr(msg, message) &&
              (!strstr(msg, "pgmesh_") || strcmp(sqlstate, "42939") == 0),
          "%s: want %s \"%s\", got %s \"%s\"", what, sqlstate, message, mini_sqlstate(r), msg ? msg : "(none)");
    PQclear(r);
}

static const char *tenant_sql(char tag)
{
    static char buf[2][160];
    char *b = buf[tag == 'b'];
    snprintf(b, sizeof buf[0], "SELECT current_setting('request.jwt.claim.tenant') || ':%c:' || $1::text", tag);
    return b;
}

/* Same name, different statements, two clients taking turns on one server connection. */
static void same_names(PGconn *de, PGconn *fr)
{
    expect_ok(prepare(de, "S_1", tenant_sql('a')), "DE prepares S_1");
    expect_ok(prepare(fr, "S_1", tenant_sql('b')), "FR prepares S_1");
    for (int i = 0; i < 10; i++) {
        char arg[16], want[32];
        snprintf(arg, sizeof arg, "%d", i);
        snprintf(want, sizeof want, "DE:a:%d", i);
        expect_value(run(de, "S_1", arg), want, "DE runs its S_1");
        snprintf(want, sizeof want, "FR:b:%d", i);
        expect_value(run(fr, "S_1", arg), want, "FR runs its S_1");
    }
    expect_ok(mini_exec(de, "BEGIN", T_MS), "BEGIN");
    expect_value(run(de, "S_1", "tx"), "DE:a:tx", "S_1 inside a transaction block");
    expect_ok(mini_exec(de, "COMMIT", T_MS), "COMMIT");
}

/* PostgreSQL's errors, with the client's statement names in them. */
static void errors(PGconn *de, PGconn *pg)
{
    expect_error(prepare(de, "S_1", "SELECT 1"), "42P05", "prepared statement \"S_1\" already exists",
                 "duplicate name");
    expect_value(run(de, "S_1", "still"), "DE:a:still", "S_1 after the refused duplicate");
    expect_error(run(de, "nope", NULL), "26000", "prepared statement \"nope\" does not exist", "unknown name");
    expect_error(run(de, "S_1", NULL), "08P01", "prepared statement \"S_1\" requires 1",
                 "Bind with too few parameters");
    PGresult *direct = prepare(pg, "", "SELEC 1");
    const char *want = direct ? PQresultErrorField(direct, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    PGresult *got = prepare(de, "S_bad", "SELEC 1");
    const char *msg = got ? PQresultErrorField(got, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    CHECK(want && msg && strcmp(want, msg) == 0 && strcmp(mini_sqlstate(got), mini_sqlstate(direct)) == 0 &&
              strcmp(PQresultErrorField(got, PG_DIAG_STATEMENT_POSITION), "1") == 0,
          "syntax error: PostgreSQL says %s \"%s\", through pgmesh %s \"%s\"", mini_sqlstate(direct),
          want ? want : "?", mini_sqlstate(got), msg ? msg : "?");
    PQclear(direct);
    PQclear(got);
    expect_ok(prepare(de, "S_bad", "SELECT 'now good'"), "the failed name is free again");
    expect_value(run(de, "S_bad", NULL), "now good", "S_bad");
    expect_ok(mini_exec(de, "DEALLOCATE \"S_bad\"", T_MS), "DEALLOCATE \"S_bad\"");
}

/* More statements than a server connection keeps: older ones are closed and prepared again when
 * used; the server never holds more than the cap between transactions. */
static void eviction(PGconn *de)
{
    char name[16], sql[96], want[32];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "E_%d", i);
        snprintf(sql, sizeof sql, "SELECT current_setting('request.jwt.claim.tenant') || ':e%d'", i);
        expect_ok(prepare(de, name, sql), "prepare E_i");
    }
    for (int round = 0; round < 3; round++)
        for (int i = 5; i >= 0; i--) {
            snprintf(name, sizeof name, "E_%d", i);
            snprintf(want, sizeof want, "DE:e%d", i);
            expect_value(run(de, name, NULL), want, "E_i after evictions");
        }
    /* pgmesh_apply is pgmesh's own claims statement (with the extension), outside the cap. */
    expect_value(mini_exec(de,
                           "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgmesh\\_%'"
                           " AND name <> 'pgmesh_apply'",
                           T_MS),
                 "3", "server-side statements at the cap");
}

/* Describe of a statement the server connection does not have (evicted): prepared there first. */
static void describe(PGconn *de)
{
    expect_ok(prepare(de, "D_1", "SELECT $1::int + 1 AS n, 'x'::text AS t"), "prepare D_1");
    for (int i = 0; i < 4; i++) { /* push D_1 out */
        char name[16];
        snprintf(name, sizeof name, "E_%d", i);
        PQclear(run(de, name, NULL));
    }
    if (!PQsendDescribePrepared(de, "D_1")) {
        CHECK(false, "send Describe");
        return;
    }
    PGresult *r = mini_last_result(de, T_MS);
    CHECK(r && PQresultStatus(r) == PGRES_COMMAND_OK && PQnparams(r) == 1 && PQparamtype(r, 0) == 23 &&
              PQnfields(r) == 2 && strcmp(PQfname(r, 0), "n") == 0 && strcmp(PQfname(r, 1), "t") == 0,
          "Describe D_1 before any Bind: %s", r ? PQresultErrorMessage(r) : "timeout");
    PQclear(r);
    expect_value(run(de, "D_1", "41"), "42", "D_1 after Describe");
}

/* Two clients, one text: one server-side statement; one client's DEALLOCATE does not break the other. */
static void sharing(PGconn *de, PGconn *fr)
{
    const char *sql = "SELECT 'shared:' || current_setting('request.jwt.claim.tenant')";
    expect_ok(prepare(de, "X_de", sql), "DE prepares X_de");
    expect_ok(prepare(fr, "X_fr", sql), "FR prepares X_fr");
    expect_value(run(de, "X_de", NULL), "shared:DE", "X_de");
    expect_value(run(fr, "X_fr", NULL), "shared:FR", "X_fr");
    expect_ok(mini_exec(de, "BEGIN", T_MS), "BEGIN");
    expect_value(run(de, "X_de", NULL), "shared:DE", "X_de in a block");
    expect_value(mini_exec(de, "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT ''shared:''%'",
                           T_MS),
                 "1", "one server-side statement for both");
    expect_ok(mini_exec(de, "COMMIT", T_MS), "COMMIT");
    PGresult *r = mini_exec(de, "DEALLOCATE PREPARE \"X_de\"", T_MS);
    CHECK(r && PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "DEALLOCATE") == 0,
          "DEALLOCATE X_de: %s %s", r ? PQcmdStatus(r) : "", r ? PQresultErrorMessage(r) : "timeout");
    PQclear(r);
    expect_error(run(de, "X_de", NULL), "26000", "prepared statement \"X_de\" does not exist", "X_de deallocated");
    expect_value(run(fr, "X_fr", NULL), "shared:FR", "FR's X_fr after DE's DEALLOCATE");
}

/* Reads a pipeline's results up to its Sync; statuses[i] per statement (PGRES_FATAL_ERROR etc.). */
static int pipeline_results(PGconn *c, ExecStatusType *statuses, char (*states)[8], int max)
{
    int n = 0;
    int64_t deadline = mini_now_ms() + T_MS;
    for (;;) {
        if (!mini_pq_wait(c, deadline)) {
            CHECK(false, "pipeline timed out");
            return n;
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            continue; /* end of one statement's results */
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return n;
        }
        if (n < max) {
            statuses[n] = st;
            snprintf(states[n], sizeof states[n], "%s", mini_sqlstate(r));
            n++;
        }
        PQclear(r);
    }
}

static void pipelines(PGconn *de)
{
    ExecStatusType st[8];
    char ss[8][8];
    /* A Parse that fails: it and the ones after it (skipped) are forgotten, the one before kept. */
    CHECK(PQenterPipelineMode(de), "pipeline mode");
    CHECK(PQsendPrepare(de, "P_ok", "SELECT 'ok:' || current_setting('request.jwt.claim.tenant')", 0, NULL) &&
              PQsendPrepare(de, "P_bad", "SELEC 1", 0, NULL) && PQsendPrepare(de, "P_after", "SELECT 'after'", 0, NULL) &&
              PQpipelineSync(de),
          "send pipeline");
    int n = pipeline_results(de, st, ss, 8);
    CHECK(n == 3 && st[0] == PGRES_COMMAND_OK && st[1] == PGRES_FATAL_ERROR && strcmp(ss[1], "42601") == 0 &&
              st[2] == PGRES_PIPELINE_ABORTED,
          "pipeline with a bad Parse: %d results, %s %s(%s) %s", n, n > 0 ? PQresStatus(st[0]) : "-",
          n > 1 ? PQresStatus(st[1]) : "-", n > 1 ? ss[1] : "", n > 2 ? PQresStatus(st[2]) : "-");
    /* An error before a Bind whose statement pgmesh prepares on the spot (E_5 was evicted): the
     * server skips that Parse too, and pgmesh must prepare it again next time. */
    CHECK(PQsendQueryPrepared(de, "P_ok", 0, NULL, NULL, NULL, 0) &&
              PQsendQueryParams(de, "SELECT 1/0", 0, NULL, NULL, NULL, NULL, 0) &&
              PQsendQueryPrepared(de, "E_5", 0, NULL, NULL, NULL, 0) && PQpipelineSync(de),
          "send second pipeline");
    n = pipeline_results(de, st, ss, 8);
    CHECK(n == 3 && st[0] == PGRES_TUPLES_OK && strcmp(ss[1], "22012") == 0 && st[2] == PGRES_PIPELINE_ABORTED,
          "pipeline with an error before a Bind: %d results", n);
    CHECK(PQexitPipelineMode(de), "exit pipeline mode: %s", PQerrorMessage(de));
    expect_value(run(de, "P_ok", NULL), "ok:DE", "P_ok after the failed pipeline");
    expect_value(run(de, "E_5", NULL), "DE:e5", "E_5 after its skipped preparation");
    expect_error(run(de, "P_after", NULL), "26000", "prepared statement \"P_after\" does not exist",
                 "skipped Parse forgotten");
    expect_ok(prepare(de, "P_after", "SELECT 'after'"), "P_after prepared again (not a duplicate)");
    expect_value(run(de, "P_after", NULL), "after", "P_after");
}

static void deallocate(PGconn *de, PGconn *fr)
{
    expect_error(mini_exec(de, "DEALLOCATE pgmesh_0123456789abcdef0123456789abcdef", T_MS), "42939",
                 "are reserved", "DEALLOCATE of a server-side name");
    expect_error(mini_exec(de, "SELECT 1; DEALLOCATE S_1", T_MS), "0A000", "DEALLOCATE must be sent alone",
                 "DEALLOCATE with another statement");
    expect_value(run(de, "S_1", "kept"), "DE:a:kept", "S_1 after the refused DEALLOCATEs");
    expect_ok(mini_exec(de, "DEALLOCATE \"S_1\"", T_MS), "DEALLOCATE \"S_1\"");
    expect_error(run(de, "S_1", "x"), "26000", "prepared statement \"S_1\" does not exist", "S_1 deallocated");
    expect_value(run(fr, "S_1", "x"), "FR:b:x", "FR's S_1 untouched");
    expect_error(mini_exec(de, "DEALLOCATE S_1", T_MS), "26000", "prepared statement \"s_1\" does not exist",
                 "DEALLOCATE twice (unquoted: folded to lower case, as PostgreSQL does)");
    expect_ok(mini_exec(de, "DEALLOCATE ALL", T_MS), "DEALLOCATE ALL");
    expect_error(run(de, "E_1", NULL), "26000", "prepared statement \"E_1\" does not exist", "after DEALLOCATE ALL");
    expect_value(run(fr, "X_fr", NULL), "shared:FR", "FR's statements after DE's DEALLOCATE ALL");
}

/* A raw-protocol session as DE; false (a failure counted) when the login does not succeed. */
static bool raw_login(struct mini_session *s)
{
    struct mini_error e;
    if (mini_login(port, "media_analytics", mini_env("TOK_DE"), s, &e, NULL) == MINI_LOGIN_READY)
        return true;
    CHECK(false, "raw login: %s %s", e.sqlstate, e.message);
    return false;
}

/* Raw frontend messages, appended to b. */
static void raw_parse(struct mini_buf *b, const char *name, const char *sql)
{
    mb_begin(b, 'P');
    mb_cstr(b, name);
    mb_cstr(b, sql);
    mb_bytes(b, "\0\0", 2); /* no parameter types */
    mb_end(b);
}

static void raw_bind(struct mini_buf *b, const char *portal, const char *stmt)
{
    mb_begin(b, 'B');
    mb_cstr(b, portal);
    mb_cstr(b, stmt);
    mb_bytes(b, "\0\0\0\0\0\0", 6); /* no formats, no parameters, no result formats */
    mb_end(b);
}

static void raw_execute(struct mini_buf *b, const char *portal, uint32_t max_rows)
{
    mb_begin(b, 'E');
    mb_cstr(b, portal);
    mb_u32(b, max_rows);
    mb_end(b);
}

/* Query (text) or a bodiless message such as Sync and Flush (text NULL). */
static void raw_msg(struct mini_buf *b, char type, const char *text)
{
    mb_begin(b, type);
    if (text)
        mb_cstr(b, text);
    mb_end(b);
}

/* The Close message (libpq 15 cannot send one): the client's name goes, the shared statement stays.
 * Each step is one message then Sync (S) or Flush (H), and the replies it must get; after a Flush
 * the client holds its server connection, and its replies come before any Sync. */
static void close_message(void)
{
    struct mini_session s;
    struct mini_error e;
    if (!raw_login(&s))
        return;
    struct mini_buf b = {0};
    const char *steps[][2] = {{"PS", "1Z"}, {"CS", "3Z"}, {"BS", "EZ"}, {"PH", "1"}, {"BH", "2"},
                              {"CS", "3Z"}, {"BS", "EZ"}, {"PS", "1Z"}, {"BS", "2Z"}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        b.len = 0;
        if (steps[i][0][0] == 'P') {
            raw_parse(&b, "C_1", "SELECT 7");
        } else if (steps[i][0][0] == 'C') {
            mb_begin(&b, 'C');
            mb_bytes(&b, "S", 1);
            mb_cstr(&b, "C_1");
            mb_end(&b);
        } else {
            raw_bind(&b, "", "C_1");
        }
        raw_msg(&b, steps[i][0][1], NULL);
        CHECK(mini_send(s.fd, &b), "raw send");
        char got[8] = {0};
        for (size_t k = 0; k < strlen(steps[i][1]); k++) {
            struct mini_msg m;
            if (mini_read_msg(s.fd, &m, mini_now_ms() + T_MS) != MINI_READ_OK)
                break;
            got[k] = m.type;
            if (m.type == 'E') {
                mini_error_parse(&m, &e);
                CHECK(strcmp(e.sqlstate, "26000") == 0 && strstr(e.message, "\"C_1\""), "Bind after Close: %s %s",
                      e.sqlstate, e.message);
            }
            free(m.body);
        }
        CHECK(strcmp(got, steps[i][1]) == 0, "raw step %zu (%s): want replies %s, got %s", i, steps[i][0],
              steps[i][1], got);
    }
    mb_free(&b);
    close(s.fd);
}

/* Raw: sends what b holds, then reads replies through the readys-th ReadyForQuery; returns their
 * types, and the DataRows' first column joined by ','. */
static void raw_round(struct mini_session *s, struct mini_buf *b, int readys, char *types, size_t tcap, char *rows,
                      size_t rcap)
{
    CHECK(mini_send(s->fd, b), "raw send");
    b->len = 0;
    size_t nt = 0, nr = 0;
    types[0] = rows[0] = '\0';
    for (;;) {
        struct mini_msg m;
        if (mini_read_msg(s->fd, &m, mini_now_ms() + T_MS) != MINI_READ_OK) {
            CHECK(false, "raw: no ReadyForQuery");
            return;
        }
        if (nt + 1 < tcap)
            types[nt++] = m.type, types[nt] = '\0';
        if (m.type == 'D' && m.len >= 6) {
            uint32_t len;
            memcpy(&len, m.body + 2, 4);
            len = ntohl(len);
            if (len < m.len && nr + len + 2 < rcap) {
                nr += (size_t)snprintf(rows + nr, rcap - nr, "%s%.*s", nr ? "," : "", (int)len, (const char *)m.body + 6);
            }
        }
        char t = m.type;
        free(m.body);
        if (t == 'Z' && --readys == 0)
            return;
    }
}

/* A portal outlives its statement: pgmesh closes least recently used statements (or a client
 * DEALLOCATEs one) while a portal made from it may still be open in the transaction; PostgreSQL
 * keeps the portal's plan, and pgmesh relies on that. */
static void portal_outlives_statement(void)
{
    struct mini_session s;
    if (!raw_login(&s))
        return;
    struct mini_buf b = {0};
    char types[64], rows[256];
    raw_msg(&b, 'Q', "BEGIN");
    raw_parse(&b, "S_p", "SELECT current_setting('request.jwt.claim.tenant') || g FROM generate_series(1, 3) g");
    raw_bind(&b, "cur", "S_p");
    raw_execute(&b, "cur", 1);
    raw_msg(&b, 'S', NULL);
    raw_round(&s, &b, 2, types, sizeof types, rows, sizeof rows);
    CHECK(strcmp(rows, "DE1") == 0, "first row from the portal: %s (replies %s)", rows, types);
    raw_msg(&b, 'Q', "DEALLOCATE \"S_p\"");
    raw_round(&s, &b, 1, types, sizeof types, rows, sizeof rows);
    CHECK(strcmp(types, "CZ") == 0, "DEALLOCATE S_p: replies %s", types);
    raw_execute(&b, "cur", 0);
    raw_msg(&b, 'S', NULL);
    raw_round(&s, &b, 1, types, sizeof types, rows, sizeof rows);
    CHECK(strcmp(rows, "DE2,DE3") == 0, "rest of the portal after its statement went: %s (replies %s)", rows, types);
    raw_msg(&b, 'Q', "COMMIT");
    raw_round(&s, &b, 1, types, sizeof types, rows, sizeof rows);
    /* A failed Parse, then a Query and a Parse before the Sync: PostgreSQL discards both (and
     * pgmesh's claims Query before the second Parse); the client gets the error and one
     * ReadyForQuery, and the next round runs normally. */
    raw_parse(&b, "", "SELEC 1");
    raw_msg(&b, 'Q', "SELECT 'discarded'");
    raw_parse(&b, "S_discarded", "SELECT 1");
    raw_msg(&b, 'S', NULL);
    raw_round(&s, &b, 1, types, sizeof types, rows, sizeof rows);
    CHECK(strcmp(types, "EZ") == 0, "failed Parse, Query, Parse, Sync: replies %s", types);
    raw_msg(&b, 'Q', "SELECT current_setting('request.jwt.claim.tenant')");
    raw_round(&s, &b, 1, types, sizeof types, rows, sizeof rows);
    CHECK(strcmp(rows, "DE") == 0 && strcmp(types, "TDCZ") == 0, "after the discarded messages: %s %s", types, rows);
    raw_parse(&b, "S_discarded", "SELECT 1");
    raw_msg(&b, 'S', NULL);
    raw_round(&s, &b, 1, types, sizeof types, rows, sizeof rows);
    CHECK(strcmp(types, "1Z") == 0, "the discarded Parse's name is free: replies %s", types);
    mb_free(&b);
    close(s.fd);
}

/* ParameterStatus from the client's own SET reaches it; pgmesh's SETs that carry a client's
 * parameters to another server connection (or take them away for the next client) do not. */
static void parameter_status(PGconn *de, PGconn *fr)
{
    const char *fr_before = PQparameterStatus(fr, "TimeZone");
    char fr_tz[64];
    snprintf(fr_tz, sizeof fr_tz, "%s", fr_before ? fr_before : "");
    expect_ok(mini_exec(de, "SET TimeZone = 'Asia/Tokyo'", T_MS), "DE sets TimeZone");
    const char *tz = PQparameterStatus(de, "TimeZone");
    CHECK(tz && strcmp(tz, "Asia/Tokyo") == 0, "DE's ParameterStatus TimeZone: %s", tz ? tz : "(none)");
    for (int i = 0; i < 3; i++) {
        expect_value(mini_exec(fr, "SELECT current_setting('TimeZone') = current_setting('TimeZone', true)", T_MS),
                     "t", "FR runs");
        expect_value(mini_exec(de, "SELECT current_setting('TimeZone')", T_MS), "Asia/Tokyo", "DE's TimeZone follows it");
    }
    tz = PQparameterStatus(fr, "TimeZone");
    CHECK(tz && strcmp(tz, fr_tz) == 0, "FR's ParameterStatus TimeZone changed to %s (was %s)", tz ? tz : "(none)",
          fr_tz);
    tz = PQparameterStatus(de, "TimeZone");
    CHECK(tz && strcmp(tz, "Asia/Tokyo") == 0, "DE's ParameterStatus TimeZone became %s", tz ? tz : "(none)");
}

/* pgmesh keeps each client's statement texts: 10,000 named statements per client, then 54000
 * until the client lets some go. */
static void client_limit(void)
{
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOK_FR"));
    CHECK(PQenterPipelineMode(c), "pipeline mode");
    char name[32], sql[64];
    for (int i = 0; i <= 10000; i++) {
        snprintf(name, sizeof name, "L_%d", i);
        snprintf(sql, sizeof sql, "SELECT %d", i);
        if (!PQsendPrepare(c, name, sql, 0, NULL)) {
            CHECK(false, "send prepare %d: %s", i, PQerrorMessage(c));
            break;
        }
    }
    CHECK(PQpipelineSync(c), "sync");
    int ok = 0, refused = 0, other = 0;
    int64_t deadline = mini_now_ms() + 30000;
    for (;;) {
        if (!mini_pq_wait(c, deadline)) {
            CHECK(false, "10,001 prepares timed out");
            break;
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            continue;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (st == PGRES_COMMAND_OK)
            ok++;
        else if (strcmp(mini_sqlstate(r), "54000") == 0)
            refused++;
        else
            other++;
        PQclear(r);
    }
    CHECK(ok == 10000 && refused == 1 && other == 0, "10,001 prepares: %d ok, %d refused with 54000, %d other", ok,
          refused, other);
    CHECK(PQexitPipelineMode(c), "exit pipeline mode");
    expect_value(run(c, "L_9999", NULL), "9999", "the 10,000th statement");
    expect_ok(mini_exec(c, "DEALLOCATE \"L_0\"", T_MS), "DEALLOCATE one");
    expect_ok(prepare(c, "L_10000", "SELECT 10000"), "room again for one");
    expect_error(prepare(c, "L_10001", "SELECT 10001"), "54000", "too many prepared statements", "and no more");
    expect_ok(mini_exec(c, "DEALLOCATE ALL", T_MS), "DEALLOCATE ALL");
    expect_ok(prepare(c, "L_10001", "SELECT 10001"), "after DEALLOCATE ALL");
    PQfinish(c);
}

int main(void)
{
    port = atoi(mini_env("MESH_PORT"));
    PGconn *de = mini_pq_connect_or_exit(mini_env("TOK_DE"));
    PGconn *fr = mini_pq_connect_or_exit(mini_env("TOK_FR"));
    PGconn *pg = PQconnectdb(mini_env("PG_DSN"));
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "FAIL direct connection: %s\n", PQerrorMessage(pg));
        return 1;
    }
    same_names(de, fr);
    errors(de, pg);
    eviction(de);
    describe(de);
    sharing(de, fr);
    pipelines(de);
    deallocate(de, fr);
    close_message();
    portal_outlives_statement();
    parameter_status(de, fr);
    client_limit();
    PQfinish(pg);
    PQfinish(fr);
    PQfinish(de);
    printf("prepared: %s\n", mini_failures ? "FAILED" : "ok");
    return mini_failures ? 1 : 0;
}
