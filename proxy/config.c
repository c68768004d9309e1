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
#include "proxy/roles.h"
#include "proxy/units.h"

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
    {{"pgmesh", "tls_cert_file", "", true, "PEM certificate (chain) shown to clients"},
     VAL_STRING, AT(tls_cert_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"pgmesh", "tls_key_file", "", true, "PEM private key of tls_cert_file"},
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
    if (!units_parse_duration_ms(value, &ms)) {
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

static bool set_string(struct config *cfg, const struct config_key *k, const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value);
    if (len < (size_t)k->min || len > (size_t)k->max) {
        snprintf(err, errlen, "%s must be %lld to %lld bytes long, not %zu", k->d.name, (long long)k->min,
                 (long long)k->max, len);
        return false;
    }
    if (k->choices && choice_index(k->choices, value) < 0) {
        char list[128];
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

static bool set_int(struct config *cfg, const struct config_key *k, const char *value, char *err, size_t errlen)
{
    int64_t n;
    if (!units_parse_count(value, &n) || n < k->min || n > k->max) {
        snprintf(err, errlen, "%s must be an integer from %lld to %lld, not \"%s\"", k->d.name, (long long)k->min,
                 (long long)k->max, value);
        return false;
    }
    *(int *)field(cfg, k) = (int)n;
    return true;
}

static bool set_enum(struct config *cfg, const struct config_key *k, const char *value, char *err, size_t errlen)
{
    int i = choice_index(k->choices, value);
    if (i < 0) {
        char list[128];
        join_choices(k->choices, list, sizeof list);
        snprintf(err, errlen, "invalid %s \"%s\" (expected one of: %s)", k->d.name, value, list);
        return false;
    }
    *(int *)field(cfg, k) = i;
    return true;
}

static bool set_duration(struct config *cfg, const struct config_key *k, const char *value, char *err,
                         size_t errlen)
{
    int64_t v;
    if (!parse_duration_key(k, value, &v, err, errlen))
        return false;
    *(int64_t *)field(cfg, k) = v;
    return true;
}

/* Parses value for k and stores it; the destination is untouched on failure. Used for the
 * defaults and the file alike, so a default is held to the same rules as a user's value. */
static bool key_set(struct config *cfg, const struct config_key *k, const char *value, char *err, size_t errlen)
{
    switch (k->kind) {
    case VAL_STRING: return set_string(cfg, k, value, err, errlen);
    case VAL_INT: return set_int(cfg, k, value, err, errlen);
    case VAL_ENUM: return set_enum(cfg, k, value, err, errlen);
    case VAL_DURATION_MS:
    case VAL_DURATION_S: return set_duration(cfg, k, value, err, errlen);
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
    struct db_config *dbs = db.name && db.conninfo ? grow(cfg->databases, cfg->ndatabases, &st->db_cap, sizeof db)
                                                   : NULL;
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

/* Parses a role's options into a new entry with its own copies of the names. */
static bool make_role(const char *name, const char *value, struct role_config *out, char *err, size_t errlen)
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
    if (!make_role(name, value, &r, err, errlen))
        return false;
    struct role_config *roles = grow(cfg->roles, cfg->nroles, &st->role_cap, sizeof r);
    if (!roles) {
        free(r.name);
        free(r.server_user);
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
        fail(st, st->lineno, "unknown section [%.*s] (expected [pgmesh], [jwt], [databases] or [roles])", len, s + 1);
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
    const struct config_key *k = find_key(section, name);
    if (!k) {
        snprintf(err, errlen, "unknown key \"%s\" in [%s]", name, section);
        return false;
    }
    size_t i = (size_t)(k - keys);
    if (st->key_line[i]) {
        snprintf(err, errlen, "duplicate key \"%s\" (first at line %d)", name, st->key_line[i]);
        return false;
    }
    st->key_line[i] = st->lineno;
    return key_set(st->cfg, k, value, err, errlen);
}

static bool add_entry(struct load_state *st, const char *section, const char *name, const char *value, char *err,
                      size_t errlen)
{
    switch (section_of(section)) {
    case SEC_PGMESH:
    case SEC_JWT: return set_table_key(st, section, name, value, err, errlen);
    case SEC_DATABASES: return add_database(st, name, value, err, errlen);
    case SEC_ROLES: return add_role(st, name, value, err, errlen);
    case SEC_NONE:
    case SEC_COUNT: break;
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

static int key_line(const struct load_state *st, const char *section, const char *name)
{
    return st->key_line[find_key(section, name) - keys];
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
        fail(st, key_line(st, "pgmesh", "listen_addr"), "listen_addr and unix_socket_dir are both empty: nothing to "
             "listen on");
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
        fail(st, line, "HS256/HS384/HS512 need secret_file; with public_key_file or jwks_file allow only RS* or ES* "
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
        fail(st, st->section_line[SEC_JWT], "[jwt] needs secret_file (HS*), public_key_file or jwks_file (RS*, ES*)");
    else
        check_algorithms_match_key(st, secret, secret ? secret_line : pubkey ? pubkey_line : jwks_line);
}

static void check_config(struct load_state *st)
{
    check_sections(st);
    check_listeners(st);
    check_jwt_keys(st);
}

/* ---- public API ---- */

/* Every key of the table at its default, so a key absent from the file is still set. */
static struct config *config_with_defaults(const char *path, char *err, size_t errlen)
{
    struct config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = strdup(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(cfg);
        return NULL;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        char why[400];
        if (!key_set(cfg, &keys[i], keys[i].d.default_value, why, sizeof why)) {
            snprintf(err, errlen, "%s: default of %s: %s", path, keys[i].d.name, why);
            config_free(cfg);
            return NULL;
        }
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
    fprintf(out, "| Section | Key | Default | On SIGHUP | Description |\n");
    fprintf(out, "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key_doc *d = &keys[i].d;
        bool empty = d->default_value[0] == '\0';
        fprintf(out, "| [%s] | `%s` | %s%s%s | %s | %s |\n", d->section, d->name, empty ? "" : "`",
                empty ? "(empty)" : d->default_value, empty ? "" : "`", d->reloadable ? "reloads" : "restart",
                d->doc);
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

/* Copies one key's value from src to dst. Only for keys without a check function: derived fields
 * (alg_mask, tenant_regex) are not copied. */
static bool key_copy(struct config *dst, const struct config *src, const struct config_key *k)
{
    switch (k->kind) {
    case VAL_STRING: {
        char *copy = strdup(*(char *const *)cfield(src, k));
        if (!copy)
            return false;
        free(*(char **)field(dst, k));
        *(char **)field(dst, k) = copy;
        return true;
    }
    case VAL_INT:
    case VAL_ENUM: *(int *)field(dst, k) = *(const int *)cfield(src, k); return true;
    case VAL_DURATION_MS:
    case VAL_DURATION_S: *(int64_t *)field(dst, k) = *(const int64_t *)cfield(src, k); return true;
    }
    return false;
}

bool config_keep_restart_keys(struct config *new_cfg, const struct config *old_cfg, const char **names,
                              size_t max_names, size_t *nkept)
{
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].d.reloadable || keys_equal(old_cfg, new_cfg, &keys[i]))
            continue;
        if (keys[i].check || !key_copy(new_cfg, old_cfg, &keys[i]))
            return false;
        if (n < max_names)
            names[n] = keys[i].d.name;
        n++;
    }
    *nkept = n;
    return true;
}
