/* /metrics with workers = N: every worker's exposition, one series per name and labels, values
 * added up (gauges of the longest wait and the 0/1 flags take the largest instead). Families keep
 * the order they first appear in, with all their samples together as the text format requires. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"
#include "proxy/workers.h"
#include "proxy/workmsg.h"

struct sample {
    char *key; /* name{labels} */
    double value;
};

struct family {
    char *name;
    char *help, *type; /* the whole comment lines */
    bool max;
    struct sample *s;
    size_t n, cap;
};

struct merge {
    struct family *f;
    size_t n, cap;
    bool failed;
};

static bool takes_max(const char *family)
{
    static const char *const names[] = {"pgmesh_pool_max_wait_seconds", "pgmesh_tenant_max_wait_seconds",
                                        "pgmesh_info", "pgmesh_shutting_down", "pgmesh_pool_login_failing"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], family) == 0)
            return true;
    return false;
}

static struct family *family(struct merge *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->f[i].name) == len && memcmp(m->f[i].name, name, len) == 0)
            return &m->f[i];
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        struct family *nf = realloc(m->f, ncap * sizeof *nf);
        if (!nf)
            return NULL;
        m->f = nf, m->cap = ncap;
    }
    struct family *f = &m->f[m->n];
    memset(f, 0, sizeof *f);
    f->name = strndup(name, len);
    if (!f->name)
        return NULL;
    f->max = takes_max(f->name);
    m->n++;
    return f;
}

static bool add_sample(struct family *f, const char *key, size_t klen, double v)
{
    for (size_t i = 0; i < f->n; i++) {
        struct sample *s = &f->s[i];
        if (strlen(s->key) == klen && memcmp(s->key, key, klen) == 0) {
            s->value = f->max ? (v > s->value ? v : s->value) : s->value + v;
            return true;
        }
    }
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 16;
        struct sample *ns = realloc(f->s, ncap * sizeof *ns);
        if (!ns)
            return false;
        f->s = ns, f->cap = ncap;
    }
    f->s[f->n].key = strndup(key, klen);
    f->s[f->n].value = v;
    return f->s[f->n++].key != NULL;
}

/* One worker's exposition into the merge. */
static void add_text(struct merge *m, const char *text, size_t len)
{
    struct family *cur = NULL;
    for (const char *p = text, *end = text + len; p < end && !m->failed;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 7 && (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0)) {
            const char *name = p + 7;
            size_t nlen = strcspn(name, " \n");
            cur = family(m, name, nlen);
            char **slot = cur ? (p[2] == 'H' ? &cur->help : &cur->type) : NULL;
            if (!cur || (!*slot && !(*slot = strndup(p, n))))
                m->failed = true;
        } else if (n > 0 && p[0] != '#' && cur) {
            const char *sp = p + n;
            while (sp > p && sp[-1] != ' ')
                sp--;
            if (sp > p && !add_sample(cur, p, (size_t)(sp - 1 - p), strtod(sp, NULL)))
                m->failed = true;
        }
        p += n + 1;
    }
}

static char *render(struct merge *m, size_t *len)
{
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        struct family *fa = &m->f[i];
        if (fa->help)
            fprintf(f, "%s\n", fa->help);
        if (fa->type)
            fprintf(f, "%s\n", fa->type);
        for (size_t j = 0; j < fa->n; j++) {
            double v = fa->s[j].value;
            if (v == (double)(long long)v)
                fprintf(f, "%s %lld\n", fa->s[j].key, (long long)v);
            else
                fprintf(f, "%s %.9g\n", fa->s[j].key, v);
        }
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void merge_free(struct merge *m)
{
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->f[i].n; j++)
            free(m->f[i].s[j].key);
        free(m->f[i].s);
        free(m->f[i].name);
        free(m->f[i].help);
        free(m->f[i].type);
    }
    free(m->f);
}

char *metrics_render_all(size_t *len)
{
    if (worker_count < 2)
        return metrics_render(len);
    char *parts[WORKERS_MAX];
    size_t lens[WORKERS_MAX];
    workmsg_gather('M', NULL, parts, lens);
    parts[worker_index] = metrics_render(&lens[worker_index]);
    struct merge m = {0};
    for (int w = 0; w < worker_count; w++)
        if (parts[w])
            add_text(&m, parts[w], lens[w]);
    char *out = m.failed ? NULL : render(&m, len);
    merge_free(&m);
    for (int w = 0; w < worker_count; w++)
        free(parts[w]);
    return out;
}
