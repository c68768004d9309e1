/* tenants: the key guarantee. Many clients of different tenants share a small pool and interleave
 * transactions from one thread (libpq's async API, poll on every PQsocket); every transaction must
 * see its own token's tenant and role claims and only its own tenant's rows. Covers the simple and
 * extended protocols, implicit and explicit transactions, errors, ROLLBACK and pipeline mode.
 * Each claims query carries a per-transaction tag, so a result delivered to the wrong client shows.
 * Env: MESH_PORT, TOK_DE, TOK_FR, TOK_ES, TOK_IT, TOK_AUDIT (tenant HQ); TXNS (default 200). */
#define _GNU_SOURCE
#include "mini.h"

#define WALL_LIMIT_MS 150000
#define STEP_LIMIT_MS 20000

/* Tagged claims query: column 6 is the tag, 7 statement_timeout, 8 work_mem. */
#define CLAIMS_TAGGED(tag)                                                                         \
    "SELECT " MINI_CLAIMS_COLS ", " tag ", current_setting('statement_timeout'),"                 \
    " current_setting('work_mem'), pg_backend_pid()" MINI_CLAIMS_FROM

/* A step is one send: a simple Query ('Q'), an extended query ('X', $1 is the tag) or a pipeline
 * ('P', statements sent with PQsendQueryParams, "SYNC" marks PQpipelineSync). expect lists the
 * results in order: T claims rows, C command ok, Z error 22012, A error 25P02, P pipeline aborted,
 * S pipeline sync, | the NULL that ends one query's results in pipeline mode. tx is the expected
 * PQtransactionStatus afterwards. */
#define CLAIMS "@CLAIMS"
#define SYNC "@SYNC"
struct step {
    char kind;
    const char *sql[8];
    const char *expect;
    PGTransactionStatusType tx;
    bool pause_after; /* idle a little inside an open transaction, so others queue for the pool */
};

struct shape {
    const char *name;
    struct step steps[8];
};

static const struct shape shapes[] = {
    {"simple", {{'Q', {CLAIMS}, "T", PQTRANS_IDLE, false}}},
    {"extended", {{'X', {CLAIMS}, "T", PQTRANS_IDLE, false}}},
    {"multi-explicit", {{'Q', {"BEGIN;" CLAIMS ";" CLAIMS "; COMMIT"}, "CTTC", PQTRANS_IDLE, false}}},
    {"multi-implicit", {{'Q', {CLAIMS ";" CLAIMS}, "TT", PQTRANS_IDLE, false}}},
    {"multi-error", {{'Q', {CLAIMS "; SELECT 1/0;" CLAIMS}, "TZ", PQTRANS_IDLE, false}}},
    {"separate",
     {{'Q', {"BEGIN"}, "C", PQTRANS_INTRANS, true},
      {'X', {CLAIMS}, "T", PQTRANS_INTRANS, true},
      {'Q', {CLAIMS}, "T", PQTRANS_INTRANS, false},
      {'Q', {"COMMIT"}, "C", PQTRANS_IDLE, false}}},
    {"fail-then-ok",
     {{'Q', {"SELECT 1/0"}, "Z", PQTRANS_IDLE, false}, {'X', {CLAIMS}, "T", PQTRANS_IDLE, false}}},
    {"rollback-after-error",
     {{'Q', {"BEGIN"}, "C", PQTRANS_INTRANS, false},
      {'Q', {CLAIMS}, "T", PQTRANS_INTRANS, true},
      {'X', {"SELECT 1/0"}, "Z", PQTRANS_INERROR, true},
      {'Q', {"SELECT 1"}, "A", PQTRANS_INERROR, false},
      {'Q', {"ROLLBACK"}, "C", PQTRANS_IDLE, false},
      {'Q', {CLAIMS}, "T", PQTRANS_IDLE, false}}},
    {"pipeline",
     {{'P', {CLAIMS, CLAIMS, SYNC, "BEGIN", CLAIMS, "COMMIT", SYNC}, "T|T|SC|T|C|S", PQTRANS_IDLE,
       false}}},
    {"pipeline-abort",
     {{'P', {CLAIMS, "SELECT 1/0", CLAIMS, SYNC, CLAIMS, SYNC}, "T|Z|P|ST|S", PQTRANS_IDLE,
       false}}},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

struct ident {
    const char *tenant, *role, *env;
};
static const struct ident idents[] = {
    {"DE", "regional_analyst", "TOK_DE"}, {"FR", "regional_analyst", "TOK_FR"},
    {"ES", "regional_analyst", "TOK_ES"}, {"IT", "regional_analyst", "TOK_IT"},
    {"DE", "regional_analyst", "TOK_DE"}, {"FR", "regional_analyst", "TOK_FR"},
    {"HQ", "global_corporate_audit", "TOK_AUDIT"}, {"ES", "regional_analyst", "TOK_ES"},
    {"IT", "regional_analyst", "TOK_IT"}, {"DE", "regional_analyst", "TOK_DE"},
    {"FR", "regional_analyst", "TOK_FR"}, {"HQ", "global_corporate_audit", "TOK_AUDIT"},
};
#define NCLIENTS ((int)(sizeof idents / sizeof idents[0]))

#define MAX_PIDS 64
struct client {
    int id;
    const struct ident *who;
    PGconn *conn;
    bool dead, done, in_flight, pipeline, want_flush;
    int txn, shape, step, pos; /* pos: index into the step's expect string */
    bool saw_null;             /* non-pipeline: the terminating NULL arrived */
    int64_t next_at_ms, sent_at_ms;
    char tag[48];
    int notices;
    int step_failures;
};

static uint32_t rng_state = 12345u;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int per_shape_ok[16], per_shape_bad[16];
static int limit_failures, tag_failures, claim_failures, sequence_failures, status_failures;
static int pids_regional[MAX_PIDS], npids_regional, pids_audit[MAX_PIDS], npids_audit;
static int max_in_flight;

static void note_pid(int pid, bool audit)
{
    int *arr = audit ? pids_audit : pids_regional, *n = audit ? &npids_audit : &npids_regional;
    for (int i = 0; i < *n; i++)
        if (arr[i] == pid)
            return;
    if (*n < MAX_PIDS)
        arr[(*n)++] = pid;
}

static void notice_counter(void *arg, const PGresult *res)
{
    struct client *c = arg;
    c->notices++;
    fprintf(stderr, "FAIL client %d got an unexpected notice: %s", c->id, PQresultErrorMessage(res));
}

/* Expands CLAIMS to the tagged query; for 'X' steps the tag travels as $1. */
static void render_sql(const struct client *c, const char *tmpl, bool as_param, char *out,
                       size_t outlen)
{
    char lit[64];
    snprintf(lit, sizeof lit, as_param ? "$1::text" : "'%s'", c->tag);
    char claims[1024];
    snprintf(claims, sizeof claims, CLAIMS_TAGGED("%s"), lit);
    size_t o = 0;
    const char *p = tmpl;
    while (*p && o + 1 < outlen) {
        if (strncmp(p, CLAIMS, strlen(CLAIMS)) == 0) {
            o += (size_t)snprintf(out + o, outlen - o, "%s", claims);
            p += strlen(CLAIMS);
        } else {
            out[o++] = *p++;
        }
        if (o >= outlen)
            o = outlen - 1;
    }
    out[o] = 0;
}

static void fail_client(struct client *c, const char *what)
{
    mini_failures++;
    c->step_failures++;
    fprintf(stderr, "FAIL client %d (%s/%s) txn %d shape %s step %d: %s\n", c->id, c->who->tenant,
            c->who->role, c->txn, shapes[c->shape].name, c->step, what);
}

static bool send_step(struct client *c)
{
    const struct step *st = &shapes[c->shape].steps[c->step];
    char sql[4096];
    const char *param[1] = {c->tag};
    c->pos = 0;
    c->saw_null = false;
    c->sent_at_ms = mini_now_ms();
    bool ok = true;
    if (st->kind == 'Q') {
        render_sql(c, st->sql[0], false, sql, sizeof sql);
        ok = PQsendQuery(c->conn, sql);
    } else if (st->kind == 'X') {
        render_sql(c, st->sql[0], true, sql, sizeof sql);
        bool uses_param = strstr(st->sql[0], CLAIMS) != NULL;
        ok = PQsendQueryParams(c->conn, sql, uses_param ? 1 : 0, NULL, uses_param ? param : NULL,
                               NULL, NULL, 0);
    } else {
        ok = PQenterPipelineMode(c->conn);
        c->pipeline = ok;
        for (int i = 0; ok && i < 8 && st->sql[i]; i++) {
            if (strcmp(st->sql[i], SYNC) == 0) {
                ok = PQpipelineSync(c->conn);
                continue;
            }
            render_sql(c, st->sql[i], true, sql, sizeof sql);
            bool uses_param = strstr(st->sql[i], CLAIMS) != NULL;
            ok = PQsendQueryParams(c->conn, sql, uses_param ? 1 : 0, NULL,
                                   uses_param ? param : NULL, NULL, NULL, 0);
        }
    }
    if (!ok) {
        char why[600];
        snprintf(why, sizeof why, "send failed: %s", PQerrorMessage(c->conn));
        fail_client(c, why);
        return false;
    }
    int f = PQflush(c->conn);
    c->want_flush = f == 1;
    if (f < 0) {
        fail_client(c, "flush failed");
        return false;
    }
    c->in_flight = true;
    return true;
}

/* Checks one result against the expected letter. */
static bool check_result(struct client *c, char want, PGresult *res)
{
    char why[1200];
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_EMPTY_QUERY;
    const char *state = mini_sqlstate(res);
    bool ok = true;
    switch (want) {
    case '|': ok = res == NULL; break;
    case 'C': ok = res && st == PGRES_COMMAND_OK; break;
    case 'S': ok = res && st == PGRES_PIPELINE_SYNC; break;
    case 'P': ok = res && st == PGRES_PIPELINE_ABORTED; break;
    case 'Z': ok = res && st == PGRES_FATAL_ERROR && strcmp(state, "22012") == 0; break;
    case 'A': ok = res && st == PGRES_FATAL_ERROR && strcmp(state, "25P02") == 0; break;
    case 'T':
        if (!mini_claims_ok(res, c->who->tenant, c->who->role, why, sizeof why)) {
            claim_failures++;
            fail_client(c, why);
            return false;
        }
        if (PQnfields(res) < 10 || strcmp(PQgetvalue(res, 0, 6), c->tag) != 0) {
            tag_failures++;
            snprintf(why, sizeof why, "result carries tag %s, this transaction sent %s",
                     PQnfields(res) > 6 ? PQgetvalue(res, 0, 6) : "?", c->tag);
            fail_client(c, why);
            return false;
        }
        {
            bool audit = strcmp(c->who->role, "global_corporate_audit") == 0;
            const char *want_to = audit ? "5min" : "30s", *want_wm = audit ? "256MB" : "128MB";
            if (strcmp(PQgetvalue(res, 0, 7), want_to) != 0 ||
                strcmp(PQgetvalue(res, 0, 8), want_wm) != 0) {
                limit_failures++;
                snprintf(why, sizeof why, "role limits statement_timeout=%s work_mem=%s, want %s %s",
                         PQgetvalue(res, 0, 7), PQgetvalue(res, 0, 8), want_to, want_wm);
                fail_client(c, why);
                return false;
            }
            note_pid(atoi(PQgetvalue(res, 0, 9)), audit);
        }
        return true;
    default: ok = false; break;
    }
    if (!ok) {
        sequence_failures++;
        snprintf(why, sizeof why, "result %d: want '%c', got %s sqlstate '%s' %s", c->pos, want,
                 res ? PQresStatus(st) : "NULL", state, res ? PQresultErrorMessage(res) : "");
        fail_client(c, why);
    }
    return ok;
}

/* The step's results are all in: check the transaction status, then move on. */
static void finish_step(struct client *c)
{
    const struct step *st = &shapes[c->shape].steps[c->step];
    c->in_flight = false;
    if (c->pipeline) {
        if (!PQexitPipelineMode(c->conn)) {
            fail_client(c, "could not leave pipeline mode (results left over)");
            c->dead = true;
            return;
        }
        c->pipeline = false;
    }
    PGTransactionStatusType tx = PQtransactionStatus(c->conn);
    if (tx != st->tx) {
        status_failures++;
        char why[128];
        snprintf(why, sizeof why, "transaction status %d, want %d", (int)tx, (int)st->tx);
        fail_client(c, why);
    }
    int64_t now = mini_now_ms();
    c->next_at_ms = now + (st->pause_after ? (int)(rng() % 4) : 0);
    c->step++;
    if (c->step >= 8 || shapes[c->shape].steps[c->step].kind == 0) {
        if (c->step_failures == 0)
            per_shape_ok[c->shape]++;
        else
            per_shape_bad[c->shape]++;
        c->step_failures = 0;
        c->step = 0;
        c->txn++;
        c->shape = (int)(rng() % NSHAPES);
        c->next_at_ms = now + (int)(rng() % 3);
    }
}

/* Consumes what has arrived; returns false when the connection is no longer usable. */
static bool drain(struct client *c)
{
    if (c->want_flush) {
        int f = PQflush(c->conn);
        if (f < 0)
            return false;
        c->want_flush = f == 1;
    }
    if (!PQconsumeInput(c->conn)) {
        char why[600];
        snprintf(why, sizeof why, "connection lost: %s", PQerrorMessage(c->conn));
        fail_client(c, why);
        return false;
    }
    const struct step *st = &shapes[c->shape].steps[c->step];
    size_t nexp = strlen(st->expect);
    while (c->in_flight && !PQisBusy(c->conn)) {
        PGresult *res = PQgetResult(c->conn);
        if (!c->pipeline && res == NULL) {
            if ((size_t)c->pos < nexp) {
                sequence_failures++;
                fail_client(c, "results ended early");
            }
            finish_step(c);
            break;
        }
        if ((size_t)c->pos >= nexp) {
            sequence_failures++;
            char why[600];
            snprintf(why, sizeof why, "unexpected extra result %s %s",
                     PQresStatus(PQresultStatus(res)), PQresultErrorMessage(res));
            fail_client(c, why);
            PQclear(res);
            continue;
        }
        bool ok = check_result(c, st->expect[c->pos], res);
        c->pos++;
        PQclear(res);
        if (!ok && c->pipeline)
            return false; /* cannot resynchronise a pipeline reliably */
        if (c->pipeline && (size_t)c->pos == nexp)
            finish_step(c);
    }
    if (PQstatus(c->conn) != CONNECTION_OK) {
        fail_client(c, "connection went bad");
        return false;
    }
    return true;
}

int main(void)
{
    alarm(WALL_LIMIT_MS / 1000 + 60); /* last resort: a hang kills the test, it never passes */
    int port = atoi(mini_env("MESH_PORT"));
    int txns = getenv("TXNS") ? atoi(getenv("TXNS")) : 200;
    struct client clients[NCLIENTS];
    memset(clients, 0, sizeof clients);
    for (int i = 0; i < NCLIENTS; i++) {
        struct client *c = &clients[i];
        c->id = i;
        c->who = &idents[i];
        c->shape = i % NSHAPES;
        c->conn = mini_pq_connect(port, "media_analytics", mini_env(c->who->env));
        if (PQstatus(c->conn) != CONNECTION_OK) {
            fprintf(stderr, "FAIL client %d (%s) cannot connect: %s", i, c->who->tenant,
                    PQerrorMessage(c->conn));
            return 1;
        }
        PQsetNoticeReceiver(c->conn, notice_counter, c);
        if (PQsetnonblocking(c->conn, 1) != 0) {
            fprintf(stderr, "FAIL cannot set nonblocking\n");
            return 1;
        }
    }
    int64_t start = mini_now_ms(), deadline = start + WALL_LIMIT_MS;
    int live = NCLIENTS;
    while (live > 0 && mini_now_ms() < deadline) {
        int64_t now = mini_now_ms();
        int64_t wake = now + 100;
        struct pollfd pfd[NCLIENTS];
        int idx[NCLIENTS], n = 0, in_flight = 0;
        for (int i = 0; i < NCLIENTS; i++) {
            struct client *c = &clients[i];
            if (c->dead || c->done)
                continue;
            if (!c->in_flight && c->step == 0 && c->txn >= txns) {
                c->done = true;
                live--;
                continue;
            }
            if (!c->in_flight && now >= c->next_at_ms && !send_step(c)) {
                c->dead = true;
                live--;
                continue;
            }
            if (!c->in_flight) {
                if (c->next_at_ms < wake)
                    wake = c->next_at_ms;
                continue;
            }
            if (now - c->sent_at_ms > STEP_LIMIT_MS) {
                fail_client(c, "no complete answer within 20 s");
                c->dead = true;
                live--;
                continue;
            }
            in_flight++;
            pfd[n] = (struct pollfd){.fd = PQsocket(c->conn),
                                     .events = (short)(POLLIN | (c->want_flush ? POLLOUT : 0))};
            idx[n++] = i;
        }
        if (in_flight > max_in_flight)
            max_in_flight = in_flight;
        int timeout = (int)(wake > now ? wake - now : 0);
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            struct client *c = &clients[idx[k]];
            if (pfd[k].revents == 0)
                continue;
            if (!drain(c)) {
                c->dead = true;
                live--;
            }
        }
    }
    int64_t elapsed = mini_now_ms() - start;

    int total_ok = 0, total_bad = 0, dead = 0, unfinished = 0, notices = 0;
    printf("%-22s %8s %8s\n", "shape", "ok", "bad");
    for (int s = 0; s < NSHAPES; s++) {
        printf("%-22s %8d %8d\n", shapes[s].name, per_shape_ok[s], per_shape_bad[s]);
        total_ok += per_shape_ok[s];
        total_bad += per_shape_bad[s];
    }
    for (int i = 0; i < NCLIENTS; i++) {
        dead += clients[i].dead;
        unfinished += !clients[i].done;
        notices += clients[i].notices;
        PQfinish(clients[i].conn);
    }
    printf("clients %d, transactions ok %d bad %d in %lld ms; max clients in flight %d\n",
           NCLIENTS, total_ok, total_bad, (long long)elapsed, max_in_flight);
    printf("failures: claims %d, tags %d, role limits %d, result sequence %d, tx status %d, "
           "notices %d, dead clients %d, unfinished %d\n",
           claim_failures, tag_failures, limit_failures, sequence_failures, status_failures,
           notices, dead, unfinished);
    printf("server backends seen: regional %d, audit %d\n", npids_regional, npids_audit);
    CHECK(unfinished == 0, "%d clients did not finish their %d transactions", unfinished, txns);
    CHECK(notices == 0, "%d unexpected notices", notices);
    /* The test only proves isolation if clients really shared server connections. */
    CHECK(npids_regional > 0 && npids_regional < 10,
          "10 regional clients used %d server backends: no sharing", npids_regional);
    CHECK(max_in_flight > 2, "never more than %d clients in flight at once", max_in_flight);
    printf("%s: %d failures\n", mini_failures ? "FAILED" : "PASSED", mini_failures);
    return mini_failures ? 1 : 0;
}
