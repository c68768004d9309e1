/* fastpath: FunctionCall ('F') messages through pgmesh. set_config called by OID (2078) with a
 * managed name is refused with 42501 and the claim stays the token's; another function by OID is
 * refused the same way; a large-object function (loread, 954) passes to PostgreSQL, which answers
 * it; libpq's lo_* API (which looks the functions up by name and calls them with FunctionCall)
 * writes and reads back a large object inside a transaction.
 * Env: MESH_PORT, TOK_DE (a tenant-DE regional_analyst token). */
#define _GNU_SOURCE
#include "mini.h"

#include <libpq/libpq-fs.h>

static int port;

/* A FunctionCall of oid with text arguments, text result. */
static bool send_function_call(struct mini_session *s, uint32_t oid, int nargs, const char *const *args)
{
    struct mini_buf b = {0};
    mb_begin(&b, 'F');
    mb_u32(&b, oid);
    unsigned char zero16[2] = {0, 0}; /* no argument format codes: all text */
    mb_bytes(&b, zero16, 2);
    unsigned char n16[2] = {0, (unsigned char)nargs};
    mb_bytes(&b, n16, 2);
    for (int i = 0; i < nargs; i++) {
        mb_u32(&b, (uint32_t)strlen(args[i]));
        mb_bytes(&b, args[i], strlen(args[i]));
    }
    mb_bytes(&b, zero16, 2); /* text result */
    mb_end(&b);
    bool ok = mini_send(s->fd, &b);
    mb_free(&b);
    return ok;
}

/* The tenant claim the session sees now, read with a simple Query on the raw session. */
static bool claim_is_de(struct mini_session *s)
{
    if (!mini_raw_query(s, "SELECT 1 WHERE current_setting('request.jwt.claim.tenant', true) = 'DE'"))
        return false;
    int64_t deadline = mini_now_ms() + 10000;
    bool row = false;
    for (;;) {
        struct mini_msg m;
        if (mini_read_msg(s->fd, &m, deadline) != MINI_READ_OK)
            return false;
        row |= m.type == 'D';
        bool ready = m.type == 'Z';
        free(m.body);
        if (ready)
            return row;
    }
}

static void refused(struct mini_session *s, uint32_t oid, int nargs, const char *const *args, const char *what)
{
    struct mini_error e = {0};
    CHECK(send_function_call(s, oid, nargs, args), "%s: send failed", what);
    enum mini_login l = mini_read_until_ready(s, &e, mini_now_ms() + 10000, false);
    CHECK(l == MINI_LOGIN_READY, "%s: no ReadyForQuery after the FunctionCall (%s)", what, mini_login_name(l));
    CHECK(strcmp(e.sqlstate, "42501") == 0 && strstr(e.message, "FunctionCall messages are refused by pgmesh"),
          "%s: got %s \"%s\", want 42501 from pgmesh", what, e.sqlstate, e.message);
    CHECK(claim_is_de(s), "%s: the tenant claim is no longer DE", what);
    mini_note("%s: refused with %s", what, e.sqlstate);
}

static void raw_cases(void)
{
    struct mini_session s;
    struct mini_error e;
    enum mini_login l = mini_login(port, "media_analytics", mini_env("TOK_DE"), &s, &e, NULL);
    if (l != MINI_LOGIN_READY) {
        CHECK(false, "raw login: %s %s %s", mini_login_name(l), e.sqlstate, e.message);
        return;
    }
    const char *set_tenant[] = {"request.jwt.claim.tenant", "FR", "false"};
    refused(&s, 2078, 3, set_tenant, "set_config(tenant) by OID");
    const char *set_timeout[] = {"statement_timeout", "0", "false"};
    refused(&s, 2078, 3, set_timeout, "set_config(statement_timeout) by OID");
    const char *one[] = {"x"};
    refused(&s, 1317, 1, one, "length(text) by OID"); /* any function that is not a large-object one */

    /* loread(fd 12345, 1): a large-object function passes; PostgreSQL says the fd is invalid. */
    const char *lo_args[] = {"12345", "1"};
    memset(&e, 0, sizeof e);
    CHECK(send_function_call(&s, 954, 2, lo_args), "loread: send failed");
    l = mini_read_until_ready(&s, &e, mini_now_ms() + 10000, false);
    CHECK(l == MINI_LOGIN_READY, "loread: no ReadyForQuery (%s)", mini_login_name(l));
    CHECK(strcmp(e.sqlstate, "42704") == 0, "loread: got %s \"%s\", want PostgreSQL's 42704", e.sqlstate,
          e.message);
    CHECK(claim_is_de(&s), "after loread: the tenant claim is no longer DE");
    close(s.fd);
}

/* libpq's lo_* API: lo_creat, lo_open, lo_write, lo_lseek, lo_read, lo_close, lo_unlink. */
static void libpq_large_object(void)
{
    PGconn *c = mini_pq_connect_or_exit(mini_env("TOK_DE"));
    PQclear(mini_exec(c, "BEGIN", 10000));
    Oid oid = lo_creat(c, INV_READ | INV_WRITE);
    CHECK(oid != InvalidOid, "lo_creat failed: %s", PQerrorMessage(c));
    int fd = lo_open(c, oid, INV_READ | INV_WRITE);
    CHECK(fd >= 0, "lo_open failed: %s", PQerrorMessage(c));
    const char data[] = "pgmesh passes libpq's large-object calls";
    CHECK(lo_write(c, fd, data, sizeof data) == (int)sizeof data, "lo_write failed: %s", PQerrorMessage(c));
    CHECK(lo_lseek(c, fd, 0, SEEK_SET) == 0, "lo_lseek failed: %s", PQerrorMessage(c));
    char back[sizeof data] = "";
    CHECK(lo_read(c, fd, back, sizeof back) == (int)sizeof data && memcmp(back, data, sizeof data) == 0,
          "lo_read gave something else: %s", PQerrorMessage(c));
    CHECK(lo_close(c, fd) == 0, "lo_close failed: %s", PQerrorMessage(c));
    CHECK(lo_unlink(c, oid) == 1, "lo_unlink failed: %s", PQerrorMessage(c));
    PGresult *r = mini_exec(c, "COMMIT", 10000);
    CHECK(r && PQresultStatus(r) == PGRES_COMMAND_OK, "COMMIT failed");
    PQclear(r);
    PQfinish(c);
    mini_note("libpq lo_* API: %zu bytes written and read back", sizeof data);
}

int main(void)
{
    alarm(120); /* last resort: a hang kills the test, it never passes */
    port = atoi(mini_env("MESH_PORT"));
    raw_cases();
    libpq_large_object();
    if (mini_failures) {
        fprintf(stderr, "fastpath: FAILED (%d failures)\n", mini_failures);
        return 1;
    }
    printf("fastpath: ok\n");
    return 0;
}
