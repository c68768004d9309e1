/* Configuration loader: reads one file through libinih, hands [pgmesh] and [jwt] keys to the key
 * table (config_keys.c) and [roles] values to roles.c, appends the [databases] and [roles] entries,
 * then runs the whole-file checks. No other I/O: key files are read by auth/keys.c. Every error
 * names file and line; nothing is truncated or skipped silently. */
#include "proxy/config.h"

#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "auth/jwt.h"
#include "proxy/config_keys.h"
#include "proxy/roles.h"

/* libinih copies names into a 50-byte buffer and truncates silently; we refuse longer names. */
#define INI_NAME_MAX 49

enum section { SEC_NONE, SEC_PGMESH, SEC_JWT, SEC_DATABASES, SEC_ROLES, SEC_COUNT };
static const char *const section_names[SEC_COUNT] = {"", "pgmesh", "jwt", "databases", "roles"};

/* Loader state: the reader counts lines so the handler knows where it is, and the first error
 * wins (libinih goes on parsing after a handler failure). */
struct load_state {
    struct config *cfg;
    FILE *file;
    char *line;
    size_t line_cap;
    int lineno;
    int section_line[SEC_COUNT];
    int key_line[CONFIG_KEYS_MAX];
    size_t db_cap, role_cap;
    int err_line; /* 0: no error */
    char err[512];
};

static void fail(struct load_state *st, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct load_state *st, int line, const char *fmt, ...)
{
    if (st->err_line != 0)
        return;
    st->err_line = line > 0 ? line : -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
}

static enum section section_of(const char *name)
{
    for (int i = SEC_PGMESH; i < SEC_COUNT; i++)
        if (strcmp(name, section_names[i]) == 0)
            return (enum section)i;
    return SEC_NONE;
}

/* ---- [databases] and [roles] ---- */

/* libpq's messages end in a period and a newline; ours are quoted inside a sentence. */
static void trim_libpq_message(char *why)
{
    size_t n = strlen(why);
    while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == '.'))
        why[--n] = '\0';
}

static bool sets_user(const PQconninfoOption *opts)
{
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "user") == 0 && o->val != NULL)
            return true;
    return false;
}

/* libpq's own parse of the conninfo, and no user: the server user comes from [roles]. */
static bool check_conninfo(const char *name, const char *conninfo, char *err, size_t errlen)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (!opts) {
        if (why)
            trim_libpq_message(why);
        snprintf(err, errlen, "invalid conninfo for database \"%s\": %s", name, why ? why : "out of memory");
        PQfreemem(why);
        return false;
    }
    bool has_user = sets_user(opts);
    PQconninfoFree(opts);
    if (has_user)
        snprintf(err, errlen, "conninfo of database \"%s\" must not set user: the server user comes from [roles]",
                 name);
    return !has_user;
}

/* arr with room for one more element of size elem (count used of *cap): arr itself, or a larger
 * copy (arr is then freed); NULL when out of memory, arr untouched. */
static void *grow(void *arr, size_t count, size_t *cap, size_t elem)
{
    if (count < *cap)
        return arr;
    size_t n = *cap ? *cap * 2 : 8;
    void *p = realloc(arr, n * elem);
    if (p)
        *cap = n;
    return p;
}

static bool add_database(struct load_state *st, const char *name, const char *conninfo, char *err, size_t errlen)
{
    struct config *cfg = st->cfg;
    /* PostgreSQL names are at most NAMEDATALEN - 1 = 63 bytes; longer ones are truncated by the
     * server, so we refuse them instead. */
    if (name[0] == '\0' || strlen(name) > PG_NAME_MAX) {
        snprintf(err, errlen, "database name must be 1 to %d bytes long", PG_NAME_MAX);
        return false;
    }
    if (config_find_database(cfg, name)) {
        snprintf(err, errlen, "duplicate database \"%s\"", name);
        return false;
    }
    if (conninfo[0] == '\0') {
        snprintf(err, errlen, "database \"%s\" has an empty conninfo", name);
        return false;
    }
    if (!check_conninfo(name, conninfo, err, errlen))
        return false;
    struct db_config db = {strdup(name), strdup(conninfo)};
    struct db_config *dbs =
        db.name && db.conninfo ? grow(cfg->databases, cfg->ndatabases, &st->db_cap, sizeof db) : NULL;
    if (!dbs) {
        free(db.name);
        free(db.conninfo);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    cfg->databases = dbs;
    dbs[cfg->ndatabases++] = db;
    return true;
}
static bool add_role(struct load_state *st, const char *name, const char *value, char *err, size_t errlen)
{
    struct config *cfg = st->cfg;
    struct role_config r;
    if (name[0] == '\0' || strlen(name) > JWT_CLAIM_MAX) {
        snprintf(err, errlen, "role name must be 1 to %d bytes long", JWT_CLAIM_MAX);
        return false;
    }
    if (config_find_role(cfg, name)) {
        snprintf(err, errlen, "duplicate role \"%s\"", name);
        return false;
    }
    if (!roles_make_entry(name, value, &r, err, errlen))
        return false;
    struct role_config *roles = grow(cfg->roles, cfg->nroles, &st->role_cap, sizeof r);
    if (!roles) {
        roles_free_entry(&r);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    cfg->roles = roles;
    roles[cfg->nroles++] = r;
    return true;
}

/* ---- libinih reader and handler ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Strips the line ending, leading blanks (so libinih never sees a continuation line), a comment
 * line, an inline " ;" or "\t;" comment, and trailing blanks. Done here rather than left to
 * libinih, whose inline-comment handling is a build option. */
static char *clean_line(char *s)
{
    while (is_blank(*s))
        s++;
    if (*s == ';' || *s == '#')
        return s + strlen(s);
    for (char *p = s + 1; *s && *p; p++) {
        if (*p == ';' && is_blank(p[-1])) {
            *p = '\0';
            break;
        }
    }
    size_t n = strlen(s);
    while (n > 0 && strchr("\n\r \t", s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* "[name]": libinih reports nothing for an empty, unknown or repeated section. */
static void check_section_header(struct load_state *st, const char *s)
{
    const char *end = strchr(s, ']');
    if (!end)
        return; /* libinih reports the syntax error */
    int len = (int)(end - s - 1);
    char name[64];
    snprintf(name, sizeof name, "%.*s", len, s + 1);
    enum section sec = section_of(name);
    if (len >= (int)sizeof name || sec == SEC_NONE)
        fail(st, st->lineno, "unknown section [%.*s] (expected [pgmesh], [jwt], [databases] or [roles])", len,
             s + 1);
    else if (st->section_line[sec])
        fail(st, st->lineno, "duplicate section [%s] (first at line %d)", name, st->section_line[sec]);
    else
        st->section_line[sec] = st->lineno;
}

/* Section headers and name lengths are checked here because libinih truncates long names and
 * reports nothing for an empty or unknown section. */
static void check_line(struct load_state *st, const char *s)
{
    if (s[0] == '[') {
        check_section_header(st, s);
        return;
    }
    size_t name_len = strcspn(s, "=:");
    while (name_len > 0 && is_blank(s[name_len - 1]))
        name_len--;
    if (s[0] != '\0' && name_len == 0)
        fail(st, st->lineno, "missing name before \"=\"");
    else if (name_len > INI_NAME_MAX)
        fail(st, st->lineno, "name \"%.20s...\" is too long (at most %d bytes)", s, INI_NAME_MAX);
}

static char *read_line(char *str, int num, void *stream)
{
    struct load_state *st = stream;
    ssize_t n = getline(&st->line, &st->line_cap, st->file);
    if (n < 0)
        return NULL;
    st->lineno++;
    const char *s = "";
    if (strlen(st->line) != (size_t)n)
        fail(st, st->lineno, "line contains a NUL byte");
    else
        s = clean_line(st->line);
    size_t len = strlen(s);
    if (num < 3 || len > (size_t)num - 3) {
        fail(st, st->lineno, "line is too long (at most %d characters without comments)", num - 3);
        s = "";
        len = 0;
    }
    check_line(st, s);
    memcpy(str, s, len);
    str[len] = '\0';
    return str;
}

/* A [pgmesh] or [jwt] key: known, given once, valid. */
static bool set_table_key(struct load_state *st, const char *section, const char *name, const char *value,
                          char *err, size_t errlen)
{
    size_t i;
    if (!config_keys_find(section, name, &i)) {
        snprintf(err, errlen, "unknown key \"%s\" in [%s]", name, section);
        return false;
    }
    if (st->key_line[i]) {
        snprintf(err, errlen, "duplicate key \"%s\" (first at line %d)", name, st->key_line[i]);
        return false;
    }
    st->key_line[i] = st->lineno;
    return config_keys_set(st->cfg, i, value, err, errlen);
}

static bool add_entry(struct load_state *st, const char *section, const char *name, const char *value, char *err,
                      size_t errlen)
{
    switch (section_of(section)) {
    case SEC_PGMESH:
    case SEC_JWT:
        return set_table_key(st, section, name, value, err, errlen);
    case SEC_DATABASES:
        return add_database(st, name, value, err, errlen);
    case SEC_ROLES:
        return add_role(st, name, value, err, errlen);
    case SEC_NONE:
    case SEC_COUNT:
        break;
    }
    if (section[0] == '\0')
        snprintf(err, errlen, "%s is outside any section", name);
    else
        snprintf(err, errlen, "unknown section [%s]", section);
    return false;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct load_state *st = user;
    char err[400] = "";
    if (name == NULL)
        return 1; /* section start, when libinih is built to report it: check_line did */
    if (value == NULL)
        fail(st, st->lineno, "%s has no value", name);
    else if (!add_entry(st, section, name, value, err, sizeof err))
        fail(st, st->lineno, "%s", err);
    return 1; /* errors are kept in st, first one wins */
}

/* ---- whole-file checks ---- */

/* The line a key was set on, 0 when it kept its default. The checks below name keys of the table
 * only, so an unknown name is a bug here, not in the file. */
static int key_line(const struct load_state *st, const char *section, const char *name)
{
    size_t i = 0;
    bool known = config_keys_find(section, name, &i);
    assert(known);
    return known ? st->key_line[i] : 0;
}

static int max_line(int a, int b)
{
    return a > b ? a : b;
}

static void check_sections(struct load_state *st)
{
    const struct config *cfg = st->cfg;
    if (cfg->ndatabases == 0)
        fail(st, st->section_line[SEC_DATABASES], "[databases] is %s: clients would have nothing to connect to",
             st->section_line[SEC_DATABASES] ? "empty" : "missing");
    if (cfg->nroles == 0)
        fail(st, st->section_line[SEC_ROLES], "[roles] is %s: no token role could be mapped to a server user",
             st->section_line[SEC_ROLES] ? "empty" : "missing");
}

static void check_listeners(struct load_state *st)
{
    const struct config *cfg = st->cfg;
    if (cfg->listen_addr[0] == '\0' && cfg->unix_socket_dir[0] == '\0')
        fail(st, key_line(st, "pgmesh", "listen_addr"),
             "listen_addr and unix_socket_dir are both empty: nothing to listen on");
    if ((cfg->tls_cert_file[0] != '\0') != (cfg->tls_key_file[0] != '\0'))
        fail(st, max_line(key_line(st, "pgmesh", "tls_cert_file"), key_line(st, "pgmesh", "tls_key_file")),
             "set both tls_cert_file and tls_key_file, or neither");
}

/* An HMAC allow-list next to a public key is the classic key-confusion attack; an RSA or EC one
 * next to a secret could never verify. Refuse both here, not at the first token. */
static void check_algorithms_match_key(struct load_state *st, bool secret, int key_file_line)
{
    const unsigned hs = jwt_algs_for_key(KEY_HMAC);
    int alg_line = key_line(st, "jwt", "algorithms");
    int line = alg_line ? alg_line : key_file_line;
    if (secret && (st->cfg->alg_mask & ~hs))
        fail(st, line, "algorithms other than HS256/HS384/HS512 need public_key_file, not secret_file");
    if (!secret && (st->cfg->alg_mask & hs))
        fail(st, line,
             "HS256/HS384/HS512 need secret_file; with public_key_file or jwks_file allow only RS* or ES* "
             "algorithms");
}

/* Exactly one key source, and algorithms that fit it. */
static void check_jwt_keys(struct load_state *st)
{
    const struct config *cfg = st->cfg;
    bool secret = cfg->secret_file[0] != '\0', pubkey = cfg->public_key_file[0] != '\0';
    bool jwks = cfg->jwks_file[0] != '\0';
    int secret_line = key_line(st, "jwt", "secret_file"), pubkey_line = key_line(st, "jwt", "public_key_file");
    int jwks_line = key_line(st, "jwt", "jwks_file");
    if (secret + pubkey + jwks > 1)
        fail(st, max_line(max_line(secret_line, pubkey_line), jwks_line),
             "set only one of secret_file, public_key_file and jwks_file");
    else if (!secret && !pubkey && !jwks)
        fail(st, st->section_line[SEC_JWT],
             "[jwt] needs secret_file (HS*), public_key_file or jwks_file (RS*, ES*)");
    else
        check_algorithms_match_key(st, secret, secret ? secret_line : pubkey ? pubkey_line : jwks_line);
}

/* Requiring the extension without the key that talks to it could only refuse every client. */
static void check_enforcement(struct load_state *st)
{
    const struct config *cfg = st->cfg;
    if (cfg->server_enforcement == ENFORCE_REQUIRE && cfg->server_key_file[0] == '\0')
        fail(st, key_line(st, "pgmesh", "server_enforcement"),
             "server_enforcement = require needs server_key_file (scripts/server-setup.sh prints it)");
}

/* Whether name is among the first n entries of names. */
static bool listed(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* Server connections are pooled per server_user, so the clients of every role with that
 * server_user pin their settings on the same backends, where the extension keeps ceilings for 16
 * settings: ROLE_PINS_MAX, plus statement_timeout and work_mem, for all those roles together. */
static void check_pins_per_server_user(struct load_state *st)
{
    const struct config *cfg = st->cfg;
    for (size_t i = 0; i < cfg->nroles; i++) {
        const char *names[ROLE_PINS_MAX + 1];
        size_t n = 0;
        for (size_t j = 0; j < cfg->nroles && n <= ROLE_PINS_MAX; j++) {
            const struct role_config *r = &cfg->roles[j];
            if (strcmp(r->server_user, cfg->roles[i].server_user) != 0)
                continue;
            for (size_t k = 0; k < r->npins && n <= ROLE_PINS_MAX; k++)
                if (!listed(names, n, r->pins[k].name))
                    names[n++] = r->pins[k].name;
        }
        if (n > ROLE_PINS_MAX) {
            fail(st, st->section_line[SEC_ROLES],
                 "the roles with server_user %s pin more than %d different settings between them (they share "
                 "server connections, where the pgmesh extension keeps at most 16 limits, statement_timeout and "
                 "work_mem included)",
                 cfg->roles[i].server_user, ROLE_PINS_MAX);
            return;
        }
    }
}

/* The union of the roles' pinned names, which the guard refuses to every client. */
static void collect_pinned(struct load_state *st)
{
    struct config *cfg = st->cfg;
    size_t total = 0;
    for (size_t i = 0; i < cfg->nroles; i++)
        total += cfg->roles[i].npins;
    if (total == 0)
        return;
    cfg->pinned = calloc(total, sizeof *cfg->pinned);
    if (!cfg->pinned) {
        fail(st, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < cfg->nroles; i++)
        for (size_t k = 0; k < cfg->roles[i].npins; k++)
            if (!listed(cfg->pinned, cfg->npinned, cfg->roles[i].pins[k].name))
                cfg->pinned[cfg->npinned++] = cfg->roles[i].pins[k].name;
}

static void check_config(struct load_state *st)
{
    check_sections(st);
    check_listeners(st);
    check_jwt_keys(st);
    check_enforcement(st);
    check_pins_per_server_user(st);
    collect_pinned(st);
}

/* ---- public API ---- */

/* Every key of the table at its default, so a key absent from the file is still set. */
static struct config *config_with_defaults(const char *path, char *err, size_t errlen)
{
    struct config *cfg = calloc(1, sizeof *cfg);
    char why[600];
    if (!cfg || !(cfg->path = strdup(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(cfg);
        return NULL;
    }
    if (!config_keys_init(cfg, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", path, why);
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Reads the open file into st->cfg; errors are kept in st. */
static void parse_file(struct load_state *st)
{
    int rc = ini_parse_stream(read_line, st, on_entry, st);
    if (ferror(st->file))
        fail(st, st->lineno + 1, "read error");
    if (rc > 0 && (st->err_line == 0 || rc < st->err_line)) {
        st->err_line = 0; /* libinih's syntax error comes first in the file */
        fail(st, rc, "syntax error: expected [section], name = value or a ; comment");
    } else if (rc < 0) {
        fail(st, 0, "out of memory");
    }
    if (st->err_line == 0)
        check_config(st);
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    struct load_state st = {0};
    st.cfg = config_with_defaults(path, err, errlen);
    if (!st.cfg)
        return NULL;
    st.file = fopen(path, "r");
    if (!st.file) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        config_free(st.cfg);
        return NULL;
    }
    parse_file(&st);
    fclose(st.file);
    free(st.line);
    if (st.err_line == 0)
        return st.cfg;
    if (st.err_line > 0)
        snprintf(err, errlen, "%s:%d: %s", path, st.err_line, st.err);
    else
        snprintf(err, errlen, "%s: %s", path, st.err);
    config_free(st.cfg);
    return NULL;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    config_keys_destroy(cfg);
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        free(cfg->databases[i].name);
        free(cfg->databases[i].conninfo);
    }
    free(cfg->databases);
    for (size_t i = 0; i < cfg->nroles; i++)
        roles_free_entry(&cfg->roles[i]);
    free(cfg->roles);
    free(cfg->pinned);
    free(cfg->path);
    free(cfg);
}

const struct db_config *config_find_database(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ndatabases; i++)
        if (strcmp(cfg->databases[i].name, name) == 0)
            return &cfg->databases[i];
    return NULL;
}

const struct role_config *config_find_role(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nroles; i++)
        if (strcmp(cfg->roles[i].name, name) == 0)
            return &cfg->roles[i];
    return NULL;
}
