/* The value grammar of a [roles] line: space-separated key=value pairs, each at most once, read
 * through one table of role options (server_user, statement_timeout, work_mem,
 * idle_in_transaction_timeout, max_transaction_age, max_client_conn), plus pin.<setting>=<value>
 * pairs (settings pgmesh sets on every transaction and clients may not change), and the role entry
 * built from it. The loader (config.c) checks the role's name and appends the entry. No I/O. */
#include "proxy/roles.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/guard.h"
#include "policy/quote.h"
#include "proxy/config.h"
#include "proxy/params.h"
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

static bool set_option(const struct role_option *o, const char *val, struct role_config *r, struct role_text *text,
                       char *err, size_t errlen)
{
    if (o->kind != ROLE_NAME)
        return set_number(o, val, r, err, errlen);
    if (strlen(val) > (size_t)o->max) {
        snprintf(err, errlen, "%s must be at most %d bytes long", o->key, (int)o->max);
        return false;
    }
    text->server_user = val;
    return true;
}

/* ---- pin.<setting>=<value> ---- */

#define PIN_PREFIX "pin."

static bool is_lower_or_underscore(char c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}

/* The length of one identifier at s: a lower case letter or '_', then those and digits; 0 when
 * none starts there. */
static size_t name_part_len(const char *s)
{
    if (!is_lower_or_underscore(s[0]))
        return 0;
    size_t n = 1;
    while (is_lower_or_underscore(s[n]) || (s[n] >= '0' && s[n] <= '9'))
        n++;
    return n;
}

/* A setting name as PostgreSQL lists it: one or two identifiers of lower case letters, digits
 * and '_' joined by a dot (a custom setting such as auto_explain.log_min_duration). pgmesh sends it
 * unquoted in SET, and the guard compares it with what clients write. */
static bool pin_name_shape_ok(const char *name, char *err, size_t errlen)
{
    for (const char *p = name; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            snprintf(err, errlen,
                     "write setting names in lower case, as PostgreSQL lists them: \"" PIN_PREFIX "%s\"", name);
            return false;
        }
    }
    size_t len = name_part_len(name);
    if (len > 0 && name[len] == '.' && name_part_len(name + len + 1) > 0)
        len += 1 + name_part_len(name + len + 1);
    if (len == 0 || name[len] != '\0') {
        snprintf(err, errlen,
                 "\"" PIN_PREFIX "%s\" is not a setting name (lower case letters, digits and _, at most one dot, "
                 "e.g. " PIN_PREFIX "hash_mem_multiplier)",
                 name);
        return false;
    }
    if (len > PG_NAME_MAX) {
        snprintf(err, errlen, "\"" PIN_PREFIX "%.20s...\" is longer than %d bytes", name, PG_NAME_MAX);
        return false;
    }
    return true;
}

/* Names pgmesh sets or follows itself, which a pin would fight: the managed settings (the guard's
 * list), the session parameters that follow each client, and the per-transaction settings a
 * committed SET cannot hold. Compared case-insensitively, as PostgreSQL does, and before the
 * name's shape, so that the message says what to write instead. */
static bool pin_name_free(const char *name, char *err, size_t errlen)
{
    bool limit = strcasecmp(name, "statement_timeout") == 0 || strcasecmp(name, "work_mem") == 0;
    if (limit || strcasecmp(name, "sort_mem") == 0) {
        snprintf(err, errlen, PIN_PREFIX "%s: the role's %s has a key of its own: write %s=<value>, without pin.",
                 name, limit ? name : "work_mem", limit ? name : "work_mem");
        return false;
    }
    if (guard_is_managed_setting(name, strlen(name))) {
        snprintf(err, errlen, PIN_PREFIX "%s: pgmesh manages %s itself, it cannot be pinned", name, name);
        return false;
    }
    if (strcasecmp(name, "vacuum_mem") == 0) {
        snprintf(err, errlen,
                 PIN_PREFIX "vacuum_mem: PostgreSQL reads vacuum_mem as maintenance_work_mem: write " PIN_PREFIX
                            "maintenance_work_mem");
        return false;
    }
    for (size_t i = 0; i < PARAM_COUNT; i++) {
        if (strcasecmp(name, param_names[i]) == 0) {
            snprintf(err, errlen,
                     PIN_PREFIX "%s: %s follows each client's own session (pgmesh sets the client's value), it "
                                "cannot be pinned",
                     name, name);
            return false;
        }
    }
    if (strncasecmp(name, "transaction_", 12) == 0) {
        snprintf(err, errlen, PIN_PREFIX "%s: %s lasts one transaction only: write " PIN_PREFIX "default_%s", name,
                 name, name);
        return false;
    }
    return true;
}

static bool pin_value_ok(const char *name, const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value), cap = 2 * len + 4;
    char *lit = malloc(cap);
    bool ok = lit && quote_literal(lit, cap, value, len);
    free(lit);
    if (!ok)
        snprintf(err, errlen, "the value of " PIN_PREFIX "%s is not valid UTF-8", name);
    return ok;
}

static bool add_pin(struct role_text *text, const char *name, const char *value, char *err, size_t errlen)
{
    if (!pin_name_free(name, err, errlen) || !pin_name_shape_ok(name, err, errlen))
        return false;
    for (size_t i = 0; i < text->npins; i++) {
        if (strcmp(text->pins[i].name, name) == 0) {
            snprintf(err, errlen, PIN_PREFIX "%s given twice", name);
            return false;
        }
    }
    if (text->npins == ROLE_PINS_MAX) {
        snprintf(err, errlen,
                 "more than %d pinned settings (the pgmesh extension keeps at most 16 per server connection, "
                 "statement_timeout and work_mem included)",
                 ROLE_PINS_MAX);
        return false;
    }
    if (!pin_value_ok(name, value, err, errlen))
        return false;
    text->pins[text->npins].name = name;
    text->pins[text->npins].value = value;
    text->npins++;
    return true;
}

/* ---- the whole line ---- */

bool roles_parse_options(char *opts, struct role_config *r, struct role_text *text, char *err, size_t errlen)
{
    bool seen[NOPTIONS] = {false};
    memset(text, 0, sizeof *text);
    for (char *save = NULL, *tok = strtok_r(opts, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || eq[1] == '\0') {
            snprintf(err, errlen, "expected key=value, not \"%s\"", tok);
            return false;
        }
        *eq = '\0';
        if (strncmp(tok, PIN_PREFIX, strlen(PIN_PREFIX)) == 0) {
            if (!add_pin(text, tok + strlen(PIN_PREFIX), eq + 1, err, errlen))
                return false;
            continue;
        }
        const struct role_option *o = find_option(tok);
        if (!o) {
            snprintf(err, errlen,
                     "unknown role setting \"%s\" (expected server_user, statement_timeout, work_mem, "
                     "idle_in_transaction_timeout, max_transaction_age, max_client_conn or " PIN_PREFIX
                     "<setting>=<value>)",
                     tok);
            return false;
        }
        if (seen[o - options]) {
            snprintf(err, errlen, "%s given twice", o->key);
            return false;
        }
        seen[o - options] = true;
        if (!set_option(o, eq + 1, r, text, err, errlen))
            return false;
    }
    if (!text->server_user) {
        snprintf(err, errlen, "server_user is required");
        return false;
    }
    return true;
}

/* Copies of what r names out of the options text; false when out of memory (r then holds the
 * copies made so far, for roles_free_entry). */
static bool copy_text(struct role_config *r, const char *name, const struct role_text *text)
{
    r->name = strdup(name);
    r->server_user = strdup(text->server_user);
    bool ok = r->name && r->server_user;
    for (size_t i = 0; i < text->npins; i++) {
        r->pins[i].name = strdup(text->pins[i].name);
        r->pins[i].value = strdup(text->pins[i].value);
        r->npins = i + 1;
        ok = ok && r->pins[i].name && r->pins[i].value;
    }
    return ok;
}

bool roles_make_entry(const char *name, const char *value, struct role_config *out, char *err, size_t errlen)
{
    char *opts = strdup(value);
    struct role_config r = {0};
    struct role_text text;
    char why[300];
    if (!opts) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (!roles_parse_options(opts, &r, &text, why, sizeof why)) {
        snprintf(err, errlen, "role \"%s\": %s", name, why);
        free(opts);
        return false;
    }
    bool ok = copy_text(&r, name, &text);
    free(opts);
    if (!ok) {
        roles_free_entry(&r);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    *out = r;
    return true;
}

void roles_free_entry(struct role_config *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->server_user);
    for (size_t i = 0; i < r->npins; i++) {
        free(r->pins[i].name);
        free(r->pins[i].value);
    }
    memset(r, 0, sizeof *r);
}

static bool number_equal(const struct role_option *o, const struct role_config *a, const struct role_config *b)
{
    const char *x = (const char *)a + o->offset, *y = (const char *)b + o->offset;
    if (o->kind == ROLE_COUNT)
        return *(const int *)x == *(const int *)y;
    return *(const int64_t *)x == *(const int64_t *)y;
}

/* Pins compare in order: the order is the order of the SETs. */
static bool pins_equal(const struct role_config *a, const struct role_config *b)
{
    if (a->npins != b->npins)
        return false;
    for (size_t i = 0; i < a->npins; i++)
        if (strcmp(a->pins[i].name, b->pins[i].name) != 0 || strcmp(a->pins[i].value, b->pins[i].value) != 0)
            return false;
    return true;
}

bool roles_equal(const struct role_config *a, const struct role_config *b)
{
    if (strcmp(a->server_user, b->server_user) != 0 || !pins_equal(a, b))
        return false;
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].kind != ROLE_NAME && !number_equal(&options[i], a, b))
            return false;
    return true;
}
