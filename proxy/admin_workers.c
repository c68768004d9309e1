/* The admin console across workers (workers = N): a SHOW answered with every worker's rows, and
 * PAUSE, RESUME and KILL_CLIENT acting where the pools and the client are. The other workers'
 * rows come through workmsg.c's gather as captures (a row: a 16-bit count, then per value a
 * 32-bit length, -1 for NULL, and the bytes) and are merged here column by column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sqlstate.h"
#include "proxy/admin.h"
#include "proxy/admin_int.h"
#include "proxy/client.h"
#include "proxy/link.h"
#include "proxy/pool.h"
#include "proxy/runtime.h"
#include "proxy/workmsg.h"

/* ---- captures ---- */

static void cap_put(struct rows_capture *cap, const void *p, size_t n)
{
    if (cap->failed)
        return;
    if (cap->cap - cap->len < n) {
        size_t ncap = cap->cap ? cap->cap : 4096;
        while (ncap - cap->len < n)
            ncap *= 2;
        char *np = realloc(cap->p, ncap);
        if (!np) {
            cap->failed = true;
            return;
        }
        cap->p = np, cap->cap = ncap;
    }
    memcpy(cap->p + cap->len, p, n);
    cap->len += n;
}

void rows_capture_add(struct rows_capture *cap, const char *const *vals, uint16_t n)
{
    cap_put(cap, &n, sizeof n);
    for (uint16_t i = 0; i < n; i++) {
        int32_t len = vals[i] ? (int32_t)strlen(vals[i]) : -1;
        cap_put(cap, &len, sizeof len);
        if (len > 0)
            cap_put(cap, vals[i], (size_t)len);
    }
}

/* A captured row read back: values point into the capture (not NUL-terminated: lens). */
struct row {
    uint16_t n;
    const char *v[ADMIN_COLS_MAX];
    int32_t len[ADMIN_COLS_MAX];
};

static bool next_row(const char *p, size_t total, size_t *off, struct row *r)
{
    if (total - *off < sizeof r->n)
        return false;
    memcpy(&r->n, p + *off, sizeof r->n);
    *off += sizeof r->n;
    if (r->n > ADMIN_COLS_MAX)
        return false;
    for (uint16_t i = 0; i < r->n; i++) {
        if (total - *off < sizeof(int32_t))
            return false;
        memcpy(&r->len[i], p + *off, sizeof(int32_t));
        *off += sizeof(int32_t);
        if (r->len[i] > (int32_t)(total - *off))
            return false;
        r->v[i] = r->len[i] >= 0 ? p + *off : NULL;
        if (r->len[i] > 0)
            *off += (size_t)r->len[i];
    }
    return true;
}

/* ---- merging ---- */

/* How a column's values from several workers become one. Text columns not named as keys keep
 * the first worker's value; int8 ones are summed unless named here. */
enum merge_op { OP_KEY, OP_SUM, OP_MAX, OP_FIRST, OP_WAVG };
struct col_rule {
    const char *col;
    enum merge_op op;
    const char *weight; /* OP_WAVG: the count it is an average over */
};
enum shape { KEYED, LISTED, WORKER0 };
struct merge_rule {
    const char *show;
    enum shape shape;
    struct col_rule cols[8];
};

static const struct merge_rule merge_rules[] = {
    {"POOLS",
     KEYED,
     {{"database", OP_KEY, NULL},
      {"user", OP_KEY, NULL},
      {"maxwait", OP_MAX, NULL},
      {"maxwait_us", OP_MAX, NULL},
      {"paused", OP_MAX, NULL}}},
    {"STATS",
     KEYED,
     {{"database", OP_KEY, NULL},
      {"avg_xact_time", OP_WAVG, "total_xact_count"},
      {"avg_query_time", OP_WAVG, "total_query_count"},
      {"avg_wait_time", OP_WAVG, "total_xact_count"}}},
    {"TENANTS", KEYED, {{"tenant", OP_KEY, NULL}, {"max_wait_time", OP_MAX, NULL}}},
    {"DATABASES",
     KEYED,
     {{"name", OP_KEY, NULL},
      {"port", OP_FIRST, NULL},
      {"max_connections", OP_FIRST, NULL},
      {"paused", OP_MAX, NULL},
      {"disabled", OP_MAX, NULL}}},
    {"CLIENTS", LISTED, {{NULL, OP_KEY, NULL}}},
    {"SERVERS", LISTED, {{NULL, OP_KEY, NULL}}},
    {"SLOTS", WORKER0, {{NULL, OP_KEY, NULL}}},
    {"COLLATIONS", WORKER0, {{NULL, OP_KEY, NULL}}},
};

static const struct merge_rule *rule_for(const char *show)
{
    for (size_t i = 0; i < sizeof merge_rules / sizeof merge_rules[0]; i++)
        if (strcmp(merge_rules[i].show, show) == 0)
            return &merge_rules[i];
    return NULL;
}

static int col_index(const struct admin_show *sh, const char *name)
{
    for (uint16_t i = 0; i < sh->ncols; i++)
        if (strcmp(sh->cols[i].name, name) == 0)
            return i;
    return -1;
}

/* One merged row: the first worker's text values, numbers as they add up. */
struct merged {
    struct row first;
    int64_t num[ADMIN_COLS_MAX];
    double wsum[ADMIN_COLS_MAX]; /* OP_WAVG: sum of value * weight */
};

static int64_t num_of(const struct row *r, int i)
{
    char buf[32];
    if (!r->v[i] || r->len[i] <= 0 || r->len[i] >= (int32_t)sizeof buf)
        return 0;
    memcpy(buf, r->v[i], (size_t)r->len[i]);
    buf[r->len[i]] = '\0';
    return strtoll(buf, NULL, 10);
}

static bool same_key(const struct row *a, const struct row *b, const enum merge_op *ops, uint16_t n)
{
    for (uint16_t i = 0; i < n; i++) {
        if (ops[i] != OP_KEY)
            continue;
        if (a->len[i] != b->len[i] || (a->len[i] > 0 && memcmp(a->v[i], b->v[i], (size_t)a->len[i]) != 0))
            return false;
    }
    return true;
}

static void fold(struct merged *m, const struct row *r, const enum merge_op *ops, const int *weight, bool first)
{
    for (uint16_t i = 0; i < r->n; i++) {
        int64_t v = num_of(r, i);
        switch (ops[i]) {
        case OP_SUM:
            m->num[i] = first ? v : m->num[i] + v;
            break;
        case OP_MAX:
            m->num[i] = first || v > m->num[i] ? v : m->num[i];
            break;
        case OP_WAVG:
            m->wsum[i] = (first ? 0 : m->wsum[i]) + (double)v * (double)num_of(r, weight[i]);
            break;
        default:
            break;
        }
    }
}

static void emit(struct admin_rows *rows, const struct merged *m, const enum merge_op *ops, const int *weight)
{
    for (uint16_t i = 0; i < m->first.n; i++) {
        if (ops[i] == OP_SUM || ops[i] == OP_MAX) {
            rows_int(rows, m->num[i]);
        } else if (ops[i] == OP_WAVG) {
            int64_t w = m->num[weight[i]];
            rows_int(rows, w > 0 ? (int64_t)(m->wsum[i] / (double)w) : 0);
        } else if (!m->first.v[i]) {
            rows_text(rows, NULL);
        } else {
            rows_textf(rows, "%.*s", (int)m->first.len[i], m->first.v[i]);
        }
    }
    rows_end(rows);
}

static void emit_row(struct admin_rows *rows, const struct row *r)
{
    for (uint16_t i = 0; i < r->n; i++) {
        if (r->v[i])
            rows_textf(rows, "%.*s", (int)r->len[i], r->v[i]);
        else
            rows_text(rows, NULL);
    }
    rows_end(rows);
}

static char *capture_show(const struct admin_show *sh, size_t *len)
{
    struct rows_capture cap = {0};
    struct admin_rows r = {.capture = &cap, .cols = sh->cols, .ncols = sh->ncols};
    sh->rows(&r);
    if (cap.failed) {
        free(cap.p);
        return NULL;
    }
    *len = cap.len;
    return cap.p;
}

void admin_show_all_workers(const struct admin_show *sh, struct admin_rows *rows)
{
    const struct merge_rule *rule = rule_for(sh->name);
    if (!rule) { /* the same in every worker: CONFIG, VERSION */
        sh->rows(rows);
        return;
    }
    char *parts[WORKERS_MAX];
    size_t lens[WORKERS_MAX];
    workmsg_gather('S', sh->name, parts, lens);
    parts[worker_index] = capture_show(sh, &lens[worker_index]);
    enum merge_op ops[ADMIN_COLS_MAX];
    int weight[ADMIN_COLS_MAX] = {0};
    for (uint16_t i = 0; i < sh->ncols; i++)
        ops[i] = sh->cols[i].type_oid == BE_TYPE_INT8 ? OP_SUM : OP_FIRST;
    for (size_t k = 0; k < 8 && rule->cols[k].col; k++) {
        int i = col_index(sh, rule->cols[k].col);
        if (i < 0)
            continue;
        ops[i] = rule->cols[k].op;
        if (ops[i] == OP_WAVG) {
            weight[i] = col_index(sh, rule->cols[k].weight);
            if (weight[i] < 0)
                ops[i] = OP_MAX;
        }
    }
    size_t nmerged = 0, cap = 0;
    struct merged *m = NULL;
    for (int w = 0; w < worker_count; w++) {
        if (!parts[w] || (rule->shape == WORKER0 && w != 0))
            continue;
        size_t off = 0;
        struct row r;
        while (next_row(parts[w], lens[w], &off, &r)) {
            if (r.n != sh->ncols)
                break;
            if (rule->shape != KEYED) {
                emit_row(rows, &r);
                continue;
            }
            size_t j = 0;
            while (j < nmerged && !same_key(&m[j].first, &r, ops, r.n))
                j++;
            if (j == nmerged) {
                if (nmerged == cap) {
                    size_t ncap = cap ? cap * 2 : 64;
                    struct merged *nm = realloc(m, ncap * sizeof *m);
                    if (!nm)
                        break;
                    m = nm, cap = ncap;
                }
                m[nmerged].first = r;
                fold(&m[nmerged++], &r, ops, weight, true);
            } else {
                fold(&m[j], &r, ops, weight, false);
            }
        }
    }
    for (size_t j = 0; j < nmerged; j++)
        emit(rows, &m[j], ops, weight);
    free(m);
    for (int w = 0; w < worker_count; w++)
        free(parts[w]);
}

/* ---- actions ---- */

static bool pool_matches(const struct pool *p, const char *db)
{
    return !db[0] || strcmp(p->database, db) == 0;
}

void admin_pools_pause_local(const char *db, bool pause)
{
    if (!db[0])
        rt.paused_all = pause;
    struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        if (!pool_matches(p, db))
            continue;
        if (pause) {
            p->paused = true;
        } else if (p->paused) {
            p->paused = false;
            link_pool_resumed(p);
        }
    }
}

bool admin_pools_idle_local(const char *db)
{
    const struct pool *p;
    TAILQ_FOREACH(p, &rt.pools, link) {
        if (p->paused && pool_matches(p, db) && (!TAILQ_EMPTY(&p->linked) || !TAILQ_EMPTY(&p->resetting)))
            return false;
    }
    return true;
}

struct client *admin_find_client(uint64_t id)
{
    struct client *t;
    TAILQ_FOREACH(t, &rt.clients, link) {
        if (t->id == id && t->state != CLIENT_CLOSING)
            return t;
    }
    return NULL;
}

void admin_kill(struct client *t)
{
    if (t->state == CLIENT_CLOSING) /* the answer just sent may have ended it (the console itself) */
        return;
    if (t->state == CLIENT_TLS_HANDSHAKE) /* no ErrorResponse fits in a handshake */
        client_close(t, "KILL_CLIENT from the admin console");
    else
        client_error(t, "FATAL", SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to administrator command",
                     "KILL_CLIENT from the admin console.", NULL);
}

void admin_others_pause(const char *db, bool pause)
{
    if (worker_count > 1)
        workmsg_tell(pause ? 'P' : 'R', db, -1);
}

/* Whether any answer to a gather was "1". */
static bool any_yes(char kind, const char *arg, bool all)
{
    char *parts[WORKERS_MAX];
    size_t lens[WORKERS_MAX];
    workmsg_gather(kind, arg, parts, lens);
    bool any = false, every = true;
    for (int w = 0; w < worker_count; w++) {
        if (w == worker_index)
            continue;
        bool yes = parts[w] && lens[w] == 1 && parts[w][0] == '1';
        any |= yes;
        every &= yes;
        free(parts[w]);
    }
    return all ? every : any;
}

bool admin_others_idle(const char *db)
{
    return any_yes('L', db, true);
}

bool admin_kill_elsewhere(uint64_t id)
{
    char arg[24];
    snprintf(arg, sizeof arg, "%llu", (unsigned long long)id);
    return any_yes('K', arg, false);
}

static char *yes_no(bool yes, size_t *len)
{
    char *p = malloc(1);
    if (p) {
        *p = yes ? '1' : '0';
        *len = 1;
    }
    return p;
}

char *admin_answer(char kind, const char *arg, size_t *len)
{
    switch (kind) {
    case 'S': {
        const struct admin_show *sh = admin_show_find(arg);
        return sh ? capture_show(sh, len) : NULL;
    }
    case 'L':
        return yes_no(admin_pools_idle_local(arg), len);
    case 'K': {
        struct client *t = admin_find_client(strtoull(arg, NULL, 10));
        if (t)
            admin_kill(t);
        return yes_no(t != NULL, len);
    }
    default:
        return NULL;
    }
}

void admin_act(char kind, const char *arg)
{
    if (kind == 'P' || kind == 'R')
        admin_pools_pause_local(arg, kind == 'P');
}
