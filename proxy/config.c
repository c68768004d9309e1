/* Configuration loader. One static table of keys drives defaults, parsing, validation and the
 * reference docs for [pgmesh] and [jwt]; [databases] and [roles] are checked here as well. Reads
 * one file through libinih and does no other I/O: key files are read by auth/keys.c. Every error
 * names file and line; nothing is truncated or skipped silently. */
#include "proxy/config.h"

#include <errno.h>
#include <ini.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"

enum value_kind {
    VAL_STRING,      /* char *, at most max bytes, one of choices when set */
    VAL_INT,         /* int in [min, max] */
    VAL_ENUM,        /* enum stored as int: index into choices */
    VAL_DURATION_MS, /* int64_t milliseconds in [min, max] */
    VAL_DURATION_S,  /* int64_t whole seconds in [min, max] */
};

/* Runs after the typed parse, before the value is stored; may set derived fields. */
typedef bool (*key_check_fn)(struct config *cfg, const char *value, char *err, size_t errlen);

struct config_key {
    struct config_key_doc d;
    enum value_kind kind;
    size_t offset;              /* destination in struct config */
    int64_t min, max;           /* numeric bounds; for VAL_STRING max is the length limit */
    const char *const *choices; /* NULL-terminated; VAL_ENUM required, VAL_STRING optional */
    key_check_fn check;
};

_Static_assert(sizeof(enum pool_mode) == sizeof(int), "VAL_ENUM stores an int");
_Static_assert(sizeof(enum client_tls_mode) == sizeof(int), "VAL_ENUM stores an int");

static const char *const pool_modes[] = {"transaction", "session", NULL}; /* POOL_* order */
static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};
static const char *const off_on[] = {"off", "on", NULL};
static const char *const client_tls_modes[] = {"disable", "allow", "require", NULL}; /* CLIENT_TLS_* order */

/* PostgreSQL names are at most NAMEDATALEN - 1 = 63 bytes; longer ones are truncated by the
 * server, so we refuse them instead. */
/* libinih copies names into a 50-byte buffer and truncates silently; we refuse longer names. */
#define INI_NAME_MAX 49
/* Unix socket path "<dir>/.s.PGSQL.<port>" must fit sockaddr_un.sun_path (108 bytes). */
#define SOCKET_DIR_MAX (108 - 1 - (int)(sizeof "/.s.PGSQL.65535" - 1))
#define MS_PER_DAY INT64_C(86400000)

static bool check_algorithms(struct config *cfg, const char *value, char *err, size_t errlen);
static bool check_tenant_pattern(struct config *cfg, const char *value, char *err, size_t errlen);

#define AT(field) offsetof(struct config, field)
static const struct config_key keys[] = {
    {{"pgmesh", "listen_addr", "127.0.0.1", false,
      "TCP address to listen on; \"*\" for all addresses, empty disables TCP"},
     VAL_STRING, AT(listen_addr), 0, 255, NULL, NULL},
    {{"pgmesh", "listen_port", "6432", false, "TCP port; also names the Unix socket file .s.PGSQL.PORT"},
     VAL_INT, AT(listen_port), 1, 65535, NULL, NULL},
    {{"pgmesh", "unix_socket_dir", "/tmp", false, "directory of the Unix socket; empty disables it"},
     VAL_STRING, AT(unix_socket_dir), 0, SOCKET_DIR_MAX, NULL, NULL},
    {{"pgmesh", "pool_mode", "transaction", false,
      "transaction: a server is lent per transaction; session: for the whole client session"},
     VAL_ENUM, AT(pool_mode), 0, 0, pool_modes, NULL},
    {{"pgmesh", "default_pool_size", "20", true, "server connections per (database, server role) pool"},
     VAL_INT, AT(default_pool_size), 1, 10000, NULL, NULL},
    {{"pgmesh", "max_client_conn", "10000", true, "client connections accepted before new ones are refused"},
     VAL_INT, AT(max_client_conn), 1, 1000000, NULL, NULL},
    {{"pgmesh", "max_client_conn_per_tenant", "0", true,
      "client connections of one tenant claim at once; 0 means no limit"},
     VAL_INT, AT(max_client_conn_per_tenant), 0, 1000000, NULL, NULL},
    {{"pgmesh", "query_wait_timeout", "30s", true,
      "how long a client may wait for a server connection; 0 waits forever"},
     VAL_DURATION_MS, AT(query_wait_timeout_ms), 0, MS_PER_DAY, NULL, NULL},
    {{"pgmesh", "server_idle_timeout", "10m", true,
      "idle server connections are closed after this long; 0 keeps them"},
     VAL_DURATION_MS, AT(server_idle_timeout_ms), 0, 7 * MS_PER_DAY, NULL, NULL},
    {{"pgmesh", "server_connect_timeout", "15s", true, "limit on connecting and logging in to a server"},
     VAL_DURATION_MS, AT(server_connect_timeout_ms), 1, 3600000, NULL, NULL},
    {{"pgmesh", "max_prepared_statements", "200", false,
      "transaction pooling: named prepared statements kept per server connection (least recently used "
      "closed first); 0 refuses named statements"},
     VAL_INT, AT(max_prepared_statements), 0, 100000, NULL, NULL},
    {{"pgmesh", "log_level", "info", true, "error, warning, info or debug"},
     VAL_STRING, AT(log_level), 0, 16, log_levels, NULL},
    {{"pgmesh", "client_tls", "require", true,
      "TLS for TCP clients: disable, allow (TLS or clear text) or require; Unix-socket clients are exempt"},
     VAL_ENUM, AT(client_tls), 0, 0, client_tls_modes, NULL},
    {{"pgmesh", "tls_cert_file", "", true, "PEM certificate (chain) shown to clients; re-read on SIGHUP"},
     VAL_STRING, AT(tls_cert_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"pgmesh", "tls_key_file", "", true, "PEM private key of tls_cert_file; re-read on SIGHUP"},
     VAL_STRING, AT(tls_key_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"pgmesh", "tls_ca_file", "", true,
      "PEM CAs for client certificates: when set, one is requested and checked but not required"},
     VAL_STRING, AT(tls_ca_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"pgmesh", "tls_ciphers", "HIGH:!aNULL:!MD5", true,
      "OpenSSL cipher list for TLS 1.2 (TLS 1.3 uses OpenSSL's default suites)"},
     VAL_STRING, AT(tls_ciphers), 0, 1024, NULL, NULL},
    {{"jwt", "algorithms", "HS256", true,
      "comma-separated allow-list (HS*, RS*, ES*); none is never accepted"},
     VAL_STRING, AT(algorithms), 0, 255, NULL, check_algorithms},
    {{"jwt", "secret_file", "", true, "file holding the HMAC secret; exactly one of secret_file, public_key_file"},
     VAL_STRING, AT(secret_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"jwt", "public_key_file", "", true, "PEM public key (RSA or EC) for RS*/ES* tokens"},
     VAL_STRING, AT(public_key_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"jwt", "issuer", "", true, "required iss claim; empty leaves it unchecked"},
     VAL_STRING, AT(issuer), 0, 1024, NULL, NULL},
    {{"jwt", "audience", "", true, "required aud claim (string or array member); empty leaves it unchecked"},
     VAL_STRING, AT(audience), 0, 1024, NULL, NULL},
    {{"jwt", "leeway", "30s", true, "clock skew allowed on exp and nbf, in whole seconds"},
     VAL_DURATION_S, AT(leeway_s), 0, 3600, NULL, NULL},
    {{"jwt", "tenant_claim", "tenant", true, "claim naming the tenant"},
     VAL_STRING, AT(tenant_claim), 1, JWT_CLAIM_MAX, NULL, NULL},
    {{"jwt", "role_claim", "role", true, "claim naming the role, looked up in [roles]"},
     VAL_STRING, AT(role_claim), 1, JWT_CLAIM_MAX, NULL, NULL},
    {{"jwt", "jwks_file", "", true, "JWKS file of RSA/EC public keys picked by the token's kid, for RS*/ES* tokens"},
     VAL_STRING, AT(jwks_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"jwt", "tenant_pattern", "^[A-Za-z0-9_.-]{1,64}$", true,
      "POSIX extended regex the whole tenant and role claims must match (at most 64 bytes regardless)"},
     VAL_STRING, AT(tenant_pattern), 1, 255, NULL, check_tenant_pattern},
    {{"jwt", "claims_json", "off", true, "on: pass the token's whole claim set to the server as request.jwt.claims"},
     VAL_ENUM, AT(claims_json), 0, 0, off_on, NULL},
    {{"jwt", "verify_cache_size", "10000", false, "verified tokens remembered (never past exp); 0 disables"},
     VAL_INT, AT(verify_cache_size), 0, 1000000, NULL, NULL},
};
#undef AT
#define NKEYS (sizeof keys / sizeof keys[0])

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
    int key_line[NKEYS];
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

/* ---- the key table ---- */

static bool check_algorithms(struct config *cfg, const char *value, char *err, size_t errlen)
{
    unsigned mask = 0;
    char why[256] = "";
    if (!jwt_parse_algorithms(value, &mask, why, sizeof why)) {
        snprintf(err, errlen, "invalid algorithms \"%s\": %s", value, why[0] ? why : "not a valid allow-list");
        return false;
    }
    cfg->alg_mask = mask;
    return true;
}

/* Compiled once here; the verifier only runs regexec on the stored regex_t. */
static bool check_tenant_pattern(struct config *cfg, const char *value, char *err, size_t errlen)
{
    regex_t re;
    int rc = regcomp(&re, value, REG_EXTENDED);
    if (rc != 0) {
        char why[128];
        regerror(rc, &re, why, sizeof why);
        snprintf(err, errlen, "invalid tenant_pattern \"%s\": %s", value, why);
        return false;
    }
    if (cfg->tenant_regex_set)
        regfree(&cfg->tenant_regex);
    cfg->tenant_regex = re;
    cfg->tenant_regex_set = true;
    return true;
}

static const struct config_key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].d.section, section) == 0 && strcmp(keys[i].d.name, name) == 0)
            return &keys[i];
    return NULL;
}

static void *field(struct config *cfg, const struct config_key *k)
{
    return (char *)cfg + k->offset;
}

static const void *cfield(const struct config *cfg, const struct config_key *k)
{
    return (const char *)cfg + k->offset;
}

static int choice_index(const char *const *choices, const char *value)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], value) == 0)
            return i;
    return -1;
}

static void join_choices(const char *const *choices, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; choices[i] && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", choices[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static bool parse_duration_key(const struct config_key *k, const char *value, int64_t *out, char *err,
                               size_t errlen)
{
    int64_t ms;
    if (!config_parse_duration_ms(value, &ms)) {
        snprintf(err, errlen, "invalid duration for %s: \"%s\" (use e.g. 250ms, 30s, 10m, 2h, 1d)", k->d.name, value);
        return false;
    }
    int64_t v = ms;
    if (k->kind == VAL_DURATION_S) {
        if (ms % 1000 != 0) {
            snprintf(err, errlen, "%s must be a whole number of seconds, not \"%s\"", k->d.name, value);
            return false;
        }
        v = ms / 1000;
    }
    if (v < k->min || v > k->max) {
        const char *unit = k->kind == VAL_DURATION_S ? "s" : "ms";
        snprintf(err, errlen, "%s must be between %lld%s and %lld%s, not \"%s\"", k->d.name, (long long)k->min,
                 unit, (long long)k->max, unit, value);
        return false;
    }
    *out = v;
    return true;
}

/* Parses value for k and stores it; the destination is untouched on failure. Used for the
 * defaults and the file alike, so a default is held to the same rules as a user's value. */
static bool key_set(struct config *cfg, const struct config_key *k, const char *value, char *err, size_t errlen)
{
    char list[128];
    switch (k->kind) {
    case VAL_STRING: {
        if (strlen(value) < (size_t)k->min || strlen(value) > (size_t)k->max) {
            snprintf(err, errlen, "%s must be %lld to %lld bytes long, not %zu", k->d.name, (long long)k->min,
                     (long long)k->max, strlen(value));
            return false;
        }
        if (k->choices && choice_index(k->choices, value) < 0) {
            join_choices(k->choices, list, sizeof list);
            snprintf(err, errlen, "invalid %s \"%s\" (expected one of: %s)", k->d.name, value, list);
            return false;
        }
        if (k->check && !k->check(cfg, value, err, errlen))
            return false;
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        char **dst = field(cfg, k);
        free(*dst);
        *dst = copy;
        return true;
    }
    case VAL_INT: {
        int64_t n;
        if (!config_parse_count(value, &n) || n < k->min || n > k->max) {
            snprintf(err, errlen, "%s must be an integer from %lld to %lld, not \"%s\"", k->d.name,
                     (long long)k->min, (long long)k->max, value);
            return false;
        }
        *(int *)field(cfg, k) = (int)n;
        return true;
    }
    case VAL_ENUM: {
        int i = choice_index(k->choices, value);
        if (i < 0) {
            join_choices(k->choices, list, sizeof list);
            snprintf(err, errlen, "invalid %s \"%s\" (expected one of: %s)", k->d.name, value, list);
            return false;
        }
        *(int *)field(cfg, k) = i;
        return true;
    }
    case VAL_DURATION_MS:
    case VAL_DURATION_S: {
        int64_t v;
        if (!parse_duration_key(k, value, &v, err, errlen))
            return false;
        *(int64_t *)field(cfg, k) = v;
        return true;
    }
    }
    snprintf(err, errlen, "internal error: bad key type");
    return false;
}

static bool keys_equal(const struct config *a, const struct config *b, const struct config_key *k)
{
    switch (k->kind) {
    case VAL_STRING: {
        const char *x = *(char *const *)cfield(a, k), *y = *(char *const *)cfield(b, k);
        return strcmp(x ? x : "", y ? y : "") == 0;
    }
    case VAL_INT:
    case VAL_ENUM:
        return *(const int *)cfield(a, k) == *(const int *)cfield(b, k);
    case VAL_DURATION_MS:
    case VAL_DURATION_S:
        return *(const int64_t *)cfield(a, k) == *(const int64_t *)cfield(b, k);
    }
    return false;
}

/* ---- [databases] and [roles] ---- */

static bool add_database(struct load_state *st, const char *name, const char *conninfo, char *err, size_t errlen)
{
    struct config *cfg = st->cfg;
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
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (!opts) {
        if (why) {
            size_t n = strlen(why);
            while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == '.'))
                why[--n] = '\0';
        }
        snprintf(err, errlen, "invalid conninfo for database \"%s\": %s", name, why ? why : "out of memory");
        PQfreemem(why);
        return false;
    }
    bool has_user = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "user") == 0 && o->val != NULL)
            has_user = true;
    PQconninfoFree(opts);
    if (has_user) {
        snprintf(err, errlen, "conninfo of database \"%s\" must not set user: the server user comes from [roles]",
                 name);
        return false;
    }
    if (cfg->ndatabases == st->db_cap) {
        size_t cap = st->db_cap ? st->db_cap * 2 : 8;
        struct db_config *d = realloc(cfg->databases, cap * sizeof *d);
        if (!d)
            goto oom;
        cfg->databases = d;
        st->db_cap = cap;
    }
    struct db_config db = {strdup(name), strdup(conninfo)};
    if (!db.name || !db.conninfo) {
        free(db.name);
        free(db.conninfo);
        goto oom;
    }
    cfg->databases[cfg->ndatabases++] = db;
    return true;
oom:
    snprintf(err, errlen, "out of memory");
    return false;
}

/* Fills r from "server_user=NAME statement_timeout=30s work_mem=128MB" (any order, each once). */

static bool add_role(struct load_state *st, const char *name, const char *value, char *err, size_t errlen)
{
    struct config *cfg = st->cfg;
    if (name[0] == '\0' || strlen(name) > JWT_CLAIM_MAX) {
        snprintf(err, errlen, "role name must be 1 to %d bytes long", JWT_CLAIM_MAX);
        return false;
    }
    if (config_find_role(cfg, name)) {
        snprintf(err, errlen, "duplicate role \"%s\"", name);
        return false;
    }
    char *opts = strdup(value);
    if (!opts)
        goto oom;
    struct role_config r = {0};
    const char *server_user;
    char why[256];
    if (!config_parse_role_options(opts, &r, &server_user, why, sizeof why)) {
        snprintf(err, errlen, "role \"%s\": %s", name, why);
        free(opts);
        return false;
    }
    r.name = strdup(name);
    r.server_user = strdup(server_user);
    free(opts);
    if (!r.name || !r.server_user)
        goto oom_role;
    if (cfg->nroles == st->role_cap) {
        size_t cap = st->role_cap ? st->role_cap * 2 : 8;
        struct role_config *rs = realloc(cfg->roles, cap * sizeof *rs);
        if (!rs)
            goto oom_role;
        cfg->roles = rs;
        st->role_cap = cap;
    }
    cfg->roles[cfg->nroles++] = r;
    return true;
oom_role:
    free(r.name);
    free(r.server_user);
oom:
    snprintf(err, errlen, "out of memory");
    return false;
}

/* ---- libinih reader and handler ---- */

/* Strips the line ending, leading blanks (so libinih never sees a continuation line), a comment
 * line, an inline " ;" or "\t;" comment, and trailing blanks. Done here rather than left to
 * libinih, whose inline-comment handling is a build option. */
static char *clean_line(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == ';' || *s == '#')
        return s + strlen(s);
    for (char *p = s; *p; p++) {
        if (*p == ';' && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Section headers and name lengths are checked here because libinih truncates long names and
 * reports nothing for an empty or unknown section. */
static void check_line(struct load_state *st, const char *s)
{
    if (s[0] == '[') {
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
        return;
    }
    size_t name_len = strcspn(s, "=:");
    while (name_len > 0 && (s[name_len - 1] == ' ' || s[name_len - 1] == '\t'))
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

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct load_state *st = user;
    char err[400] = "";
    bool ok = true;
    if (name == NULL)
        return 1; /* section start, when libinih is built to report it: check_line did */
    if (value == NULL) {
        fail(st, st->lineno, "%s has no value", name);
        return 1;
    }
    enum section sec = section_of(section);
    switch (sec) {
    case SEC_NONE:
        if (section[0] == '\0')
            snprintf(err, sizeof err, "%s is outside any section", name);
        else
            snprintf(err, sizeof err, "unknown section [%s]", section);
        ok = false;
        break;
    case SEC_PGMESH:
    case SEC_JWT: {
        const struct config_key *k = find_key(section, name);
        if (!k) {
            snprintf(err, sizeof err, "unknown key \"%s\" in [%s]", name, section);
            ok = false;
            break;
        }
        size_t i = (size_t)(k - keys);
        if (st->key_line[i]) {
            snprintf(err, sizeof err, "duplicate key \"%s\" (first at line %d)", name, st->key_line[i]);
            ok = false;
            break;
        }
        st->key_line[i] = st->lineno;
        ok = key_set(st->cfg, k, value, err, sizeof err);
        break;
    }
    case SEC_DATABASES:
        ok = add_database(st, name, value, err, sizeof err);
        break;
    case SEC_ROLES:
        ok = add_role(st, name, value, err, sizeof err);
        break;
    case SEC_COUNT:
        break;
    }
    if (!ok)
        fail(st, st->lineno, "%s", err);
    return 1; /* errors are kept in st, first one wins */
}

/* ---- whole-file checks ---- */

static int key_line(const struct load_state *st, const char *section, const char *name)
{
    return st->key_line[find_key(section, name) - keys];
}

static void check_config(struct load_state *st)
{
    const struct config *cfg = st->cfg;
    if (cfg->ndatabases == 0)
        fail(st, st->section_line[SEC_DATABASES], "[databases] is %s: clients would have nothing to connect to",
             st->section_line[SEC_DATABASES] ? "empty" : "missing");
    if (cfg->nroles == 0)
        fail(st, st->section_line[SEC_ROLES], "[roles] is %s: no token role could be mapped to a server user",
             st->section_line[SEC_ROLES] ? "empty" : "missing");
    if (cfg->listen_addr[0] == '\0' && cfg->unix_socket_dir[0] == '\0')
        fail(st, key_line(st, "pgmesh", "listen_addr"), "listen_addr and unix_socket_dir are both empty: nothing to "
             "listen on");
    if ((cfg->tls_cert_file[0] != '\0') != (cfg->tls_key_file[0] != '\0')) {
        int cl = key_line(st, "pgmesh", "tls_cert_file"), kl = key_line(st, "pgmesh", "tls_key_file");
        fail(st, cl > kl ? cl : kl, "set both tls_cert_file and tls_key_file, or neither");
    }

    bool secret = cfg->secret_file[0] != '\0', pubkey = cfg->public_key_file[0] != '\0';
    bool jwks = cfg->jwks_file[0] != '\0';
    int secret_line = key_line(st, "jwt", "secret_file"), pubkey_line = key_line(st, "jwt", "public_key_file");
    int jwks_line = key_line(st, "jwt", "jwks_file");
    int last_line = secret_line > pubkey_line ? secret_line : pubkey_line;
    if (jwks_line > last_line)
        last_line = jwks_line;
    if (secret + pubkey + jwks > 1)
        fail(st, last_line, "set only one of secret_file, public_key_file and jwks_file");
    else if (!secret && !pubkey && !jwks)
        fail(st, st->section_line[SEC_JWT],
             "[jwt] needs secret_file (HS*), public_key_file or jwks_file (RS*, ES*)");
    else {
        pubkey = pubkey || jwks;
        pubkey_line = pubkey_line ? pubkey_line : jwks_line;
        /* An HMAC allow-list next to a public key is the classic key-confusion attack; an RSA or
         * EC one next to a secret could never verify. Refuse both here, not at the first token. */
        const unsigned hs = jwt_algs_for_key(KEY_HMAC);
        int alg_line = key_line(st, "jwt", "algorithms");
        if (secret && (cfg->alg_mask & ~hs))
            fail(st, alg_line ? alg_line : secret_line, "algorithms other than HS256/HS384/HS512 need "
                 "public_key_file, not secret_file");
        if (pubkey && (cfg->alg_mask & hs))
            fail(st, alg_line ? alg_line : pubkey_line, "HS256/HS384/HS512 need secret_file; with "
                 "public_key_file or jwks_file allow only RS* or ES* algorithms");
    }
}

/* ---- public API ---- */

struct config *config_load(const char *path, char *err, size_t errlen)
{
    struct load_state st = {0};
    struct config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = strdup(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(cfg);
        return NULL;
    }
    st.cfg = cfg;
    for (size_t i = 0; i < NKEYS; i++) {
        char why[400];
        if (!key_set(cfg, &keys[i], keys[i].d.default_value, why, sizeof why)) {
            snprintf(err, errlen, "%s: default of %s: %s", path, keys[i].d.name, why);
            config_free(cfg);
            return NULL;
        }
    }
    st.file = fopen(path, "r");
    if (!st.file) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        config_free(cfg);
        return NULL;
    }
    int rc = ini_parse_stream(read_line, &st, on_entry, &st);
    bool read_error = ferror(st.file);
    fclose(st.file);
    free(st.line);
    if (read_error)
        fail(&st, st.lineno + 1, "read error");
    if (rc > 0 && (st.err_line == 0 || rc < st.err_line)) {
        st.err_line = 0;
        fail(&st, rc, "syntax error: expected [section], name = value or a ; comment");
    } else if (rc < 0) {
        fail(&st, 0, "out of memory");
    }
    if (st.err_line == 0)
        check_config(&st);
    if (st.err_line != 0) {
        if (st.err_line > 0)
            snprintf(err, errlen, "%s:%d: %s", path, st.err_line, st.err);
        else
            snprintf(err, errlen, "%s: %s", path, st.err);
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].kind == VAL_STRING)
            free(*(char **)field(cfg, &keys[i]));
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        free(cfg->databases[i].name);
        free(cfg->databases[i].conninfo);
    }
    free(cfg->databases);
    for (size_t i = 0; i < cfg->nroles; i++) {
        free(cfg->roles[i].name);
        free(cfg->roles[i].server_user);
    }
    free(cfg->roles);
    if (cfg->tenant_regex_set)
        regfree(&cfg->tenant_regex);
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

size_t config_key_count(void)
{
    return NKEYS;
}

const struct config_key_doc *config_key_doc(size_t i)
{
    return i < NKEYS ? &keys[i].d : NULL;
}

void config_print_reference(FILE *out)
{
    fprintf(out, "| Section | Key | Default | Description |\n");
    fprintf(out, "| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key_doc *d = &keys[i].d;
        fprintf(out, "| [%s] | `%s` | %s%s%s | %s%s |\n", d->section, d->name, d->default_value[0] ? "`" : "",
                d->default_value[0] ? d->default_value : "(empty)", d->default_value[0] ? "`" : "", d->doc,
                d->reloadable ? "" : " (restart to change)");
    }
}

size_t config_restart_changes(const struct config *old_cfg, const struct config *new_cfg, const char **names,
                              size_t max_names)
{
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].d.reloadable || keys_equal(old_cfg, new_cfg, &keys[i]))
            continue;
        if (n < max_names)
            names[n] = keys[i].d.name;
        n++;
    }
    return n;
}
