/* The value grammar of a [roles] line: space-separated key=value pairs, each at most once, read
 * through one table of role options (server_user, statement_timeout, work_mem,
 * idle_in_transaction_timeout, max_transaction_age, max_client_conn), and the role entry built from
 * it. The loader (config.c) checks the role's name and appends the entry. No I/O. */
#include "proxy/roles.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/units.h"

enum role_value {
    ROLE_NAME,        /* server_user: a PostgreSQL name, kept as a view into the options */
    ROLE_DURATION_MS, /* int64_t milliseconds */
    ROLE_SIZE_KB,     /* int64_t kB */
    ROLE_COUNT,       /* int */
};

struct role_option {
    const char *key;
    enum role_value kind;
    size_t offset; /* in struct role_config; unused for ROLE_NAME */
    int64_t min, max;
    const char *usage; /* shown after an invalid value */
};

#define AT(field) offsetof(struct role_config, field)
static const struct role_option options[] = {
    {"server_user", ROLE_NAME, 0, 0, PG_NAME_MAX, NULL},
    {"statement_timeout", ROLE_DURATION_MS, AT(statement_timeout_ms), 1, INT_MAX,
     "use e.g. 250ms, 30s, 5min; 0 is not allowed, leave the key out instead"},
    {"work_mem", ROLE_SIZE_KB, AT(work_mem_kb), 64, INT_MAX, "use e.g. 64kB, 128MB, 1GB; at least 64kB"},
    {"idle_in_transaction_timeout", ROLE_DURATION_MS, AT(idle_in_transaction_timeout_ms), 1, INT64_MAX,
     "use e.g. 30s, 10min"},
    {"max_transaction_age", ROLE_DURATION_MS, AT(max_transaction_age_ms), 1, INT64_MAX, "use e.g. 30s, 10min"},
    {"max_client_conn", ROLE_COUNT, AT(max_client_conn), 1, INT_MAX, "a positive integer"},
};
#undef AT
#define NOPTIONS (sizeof options / sizeof options[0])

static const struct role_option *find_option(const char *key)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

static bool parse_number(const struct role_option *o, const char *val, int64_t *out)
{
    switch (o->kind) {
    case ROLE_DURATION_MS:
        return units_parse_duration_ms(val, out);
    case ROLE_SIZE_KB:
        return units_parse_size_kb(val, out);
    case ROLE_COUNT:
        return units_parse_count(val, out);
    case ROLE_NAME:
        break;
    }
    return false;
}

/* Stores one numeric option into r; false with err set when the value is invalid. */
static bool set_number(const struct role_option *o, const char *val, struct role_config *r, char *err,
                       size_t errlen)
{
    int64_t v;
    if (!parse_number(o, val, &v) || v < o->min || v > o->max) {
        snprintf(err, errlen, "invalid %s \"%s\" (%s)", o->key, val, o->usage);
        return false;
    }
    if (o->kind == ROLE_COUNT)
        *(int *)((char *)r + o->offset) = (int)v; /* max is INT_MAX */
    else
        *(int64_t *)((char *)r + o->offset) = v;
    return true;
}

static bool set_option(const struct role_option *o, const char *val, struct role_config *r,
                       const char **server_user, char *err, size_t errlen)
{
    if (o->kind != ROLE_NAME)
        return set_number(o, val, r, err, errlen);
    if (strlen(val) > (size_t)o->max) {
        snprintf(err, errlen, "%s must be at most %d bytes long", o->key, (int)o->max);
        return false;
    }
    *server_user = val;
    return true;
}

bool roles_parse_options(char *opts, struct role_config *r, const char **server_user, char *err, size_t errlen)
{
    bool seen[NOPTIONS] = {false};
    *server_user = NULL;
    for (char *save = NULL, *tok = strtok_r(opts, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || eq[1] == '\0') {
            snprintf(err, errlen, "expected key=value, not \"%s\"", tok);
            return false;
        }
        *eq = '\0';
        const struct role_option *o = find_option(tok);
        if (!o) {
            snprintf(err, errlen,
                     "unknown role setting \"%s\" (expected server_user, statement_timeout, work_mem, "
                     "idle_in_transaction_timeout, max_transaction_age, max_client_conn)",
                     tok);
            return false;
        }
        if (seen[o - options]) {
            snprintf(err, errlen, "%s given twice", o->key);
            return false;
        }
        seen[o - options] = true;
        if (!set_option(o, eq + 1, r, server_user, err, errlen))
            return false;
    }
    if (!*server_user) {
        snprintf(err, errlen, "server_user is required");
        return false;
    }
    return true;
}

bool roles_make_entry(const char *name, const char *value, struct role_config *out, char *err, size_t errlen)
{
    char *opts = strdup(value);
    struct role_config r = {0};
    const char *server_user;
    char why[256];
    if (!opts) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (!roles_parse_options(opts, &r, &server_user, why, sizeof why)) {
        snprintf(err, errlen, "role \"%s\": %s", name, why);
        free(opts);
        return false;
    }
    r.name = strdup(name);
    r.server_user = strdup(server_user);
    free(opts);
    if (!r.name || !r.server_user) {
        free(r.name);
        free(r.server_user);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    *out = r;
    return true;
}

static bool number_equal(const struct role_option *o, const struct role_config *a, const struct role_config *b)
{
    const char *x = (const char *)a + o->offset, *y = (const char *)b + o->offset;
    if (o->kind == ROLE_COUNT)
        return *(const int *)x == *(const int *)y;
    return *(const int64_t *)x == *(const int64_t *)y;
}

bool roles_equal(const struct role_config *a, const struct role_config *b)
{
    if (strcmp(a->server_user, b->server_user) != 0)
        return false;
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].kind != ROLE_NAME && !number_equal(&options[i], a, b))
            return false;
    return true;
}
