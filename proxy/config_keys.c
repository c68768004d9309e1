/* The [pgmesh] and [jwt] key table and what reads it: typed setters with their bounds, defaults,
 * the README reference and the restart-key comparison for reloads. Stores parsed values in a struct
 * config and nothing else: no file reading (config.c) and no [databases] or [roles] entries. */
#include "proxy/config_keys.h"

#include <limits.h>
#include <regex.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "proxy/config.h"
#include "proxy/peers.h"
#include "proxy/units.h"
#include "proxy/workers.h"

enum value_kind {
    VAL_STRING,      /* char *, at most max bytes, one of choices when set */
    VAL_INT,         /* int in [min, max] */
    VAL_ENUM,        /* enum stored as int: index into choices */
    VAL_DURATION_MS, /* int64_t milliseconds in [min, max] */
    VAL_DURATION_S,  /* int64_t whole seconds in [min, max] */
    VAL_SIZE_KB,     /* int64_t kB in [min, max], written with PostgreSQL's memory units */
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
_Static_assert(sizeof(enum server_enforcement) == sizeof(int), "VAL_ENUM stores an int");
_Static_assert(sizeof(enum log_format) == sizeof(int), "VAL_ENUM stores an int");

static const char *const pool_modes[] = {"transaction", "session", NULL}; /* POOL_* order */
static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL}; /* LOG_FORMAT_* order */
static const char *const off_on[] = {"off", "on", NULL};
static const char *const client_tls_modes[] = {"disable", "allow", "require", NULL}; /* CLIENT_TLS_* order */
static const char *const enforcements[] = {"off", "prefer", "require", NULL};        /* ENFORCE_* order */

/* Unix socket path "<dir>/.s.PGSQL.<port>" must fit sockaddr_un.sun_path (108 bytes). */
#define SOCKET_DIR_MAX (108 - 1 - (int)(sizeof "/.s.PGSQL.65535" - 1))
#define MS_PER_DAY INT64_C(86400000)
#define KB_PER_TB (INT64_C(1024) * 1024 * 1024)

static bool check_algorithms(struct config *cfg, const char *value, char *err, size_t errlen);
static bool check_tenant_pattern(struct config *cfg, const char *value, char *err, size_t errlen);
static bool check_name_list(struct config *cfg, const char *value, char *err, size_t errlen);
static bool check_peers(struct config *cfg, const char *value, char *err, size_t errlen);
static bool check_workers(struct config *cfg, const char *value, char *err, size_t errlen);
static bool check_cidr_list(struct config *cfg, const char *value, char *err, size_t errlen);

#define AT(field) offsetof(struct config, field)
// clang-format off
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
    {{"pgmesh", "workers", "auto", false,
      "worker processes, each with its own event loop, pools and SO_REUSEPORT listener: a number from 1 to 16, "
      "or auto for one per CPU this process may run on (at most 16); default_pool_size is shared out between "
      "them, new connections fill them in order up to their shares, max_client_conn and the per-tenant and per-role client limits hold across them"},
     VAL_STRING, AT(workers_spec), 1, 16, NULL, check_workers},
    {{"pgmesh", "peer_id", "0", false,
      "this instance's number (1-127) among pgmesh instances behind one load balancer: it is carried in "
      "the cancel keys it gives clients, so that a peer that receives the cancel request passes it here; 0: "
      "no peering"},
     VAL_INT, AT(peer_id), 0, 127, NULL, NULL},
    {{"pgmesh", "peers", "", true,
      "the other instances, as id=address:port separated by commas (numeric IPv4 or [IPv6] addresses): "
      "a cancel request whose key names one of them is sent on to it"},
     VAL_STRING, AT(peers), 0, 4096, NULL, check_peers},
    {{"pgmesh", "metrics_listen", "", false,
      "host:port for the HTTP endpoint serving /metrics (Prometheus), /healthz and /readyz; empty: none"},
     VAL_STRING, AT(metrics_listen), 0, 255, NULL, NULL},
    {{"pgmesh", "client_login_timeout", "60s", true,
      "a client that has not finished its startup, TLS handshake and authentication this long after "
      "connecting is closed (FATAL 08P01 \"login timeout\")"},
     VAL_DURATION_MS, AT(client_login_timeout_ms), 1, MS_PER_DAY, NULL, NULL},
    {{"pgmesh", "claim_affinity_passes", "64", true,
      "transaction pooling: a server freed by a tenant's client may go to a later waiting client of the same "
      "tenant and role, so that it needs no reset; each waiter is passed over at most this many times; 0 "
      "serves the wait queue strictly in order"},
     VAL_INT, AT(claim_affinity_passes), 0, 1000, NULL, NULL},
    {{"pgmesh", "query_wait_timeout", "30s", true,
      "how long a client may wait for a server connection; 0 waits forever"},
     VAL_DURATION_MS, AT(query_wait_timeout_ms), 0, MS_PER_DAY, NULL, NULL},
    {{"pgmesh", "idle_transaction_timeout", "0", true,
      "a client idle inside a transaction, or after extended-protocol messages without Sync, this long is "
      "ended (FATAL 25P03) and its server rolled back; a role's idle_in_transaction_timeout overrides it; 0: "
      "no limit"},
     VAL_DURATION_MS, AT(idle_transaction_timeout_ms), 0, 7 * MS_PER_DAY, NULL, NULL},
    {{"pgmesh", "server_idle_timeout", "10m", true,
      "idle server connections are closed after this long; 0 keeps them"},
     VAL_DURATION_MS, AT(server_idle_timeout_ms), 0, 7 * MS_PER_DAY, NULL, NULL},
    {{"pgmesh", "server_connect_timeout", "15s", true, "limit on connecting and logging in to a server, per host of a multi-host conninfo"},
     VAL_DURATION_MS, AT(server_connect_timeout_ms), 1, 3600000, NULL, NULL},
    {{"pgmesh", "server_login_retry", "5s", true,
      "while server connections or logins fail, the longest a pool waits between attempts (each wait "
      "is a quarter of the outage so far, at least 0.1 s, up to this); meanwhile clients that need a server get FATAL 08006 with "
      "the server's message at once"},
     VAL_DURATION_MS, AT(server_login_retry_ms), 0, 3600000, NULL, NULL},
    {{"pgmesh", "shutdown_timeout", "30s", true,
      "on SIGTERM or SIGINT, how long transactions in progress may run on before pgmesh exits; 0 exits at "
      "once, as does a second signal"},
     VAL_DURATION_MS, AT(shutdown_timeout_ms), 0, 3600000, NULL, NULL},
    {{"pgmesh", "max_prepared_statements", "200", false,
      "transaction pooling: named prepared statements kept per server connection (least recently used "
      "closed first); 0 refuses named statements"},
     VAL_INT, AT(max_prepared_statements), 0, 100000, NULL, NULL},
    {{"pgmesh", "server_enforcement", "prefer", false,
      "require: lend only server connections whose database has the pgmesh extension (claims and limits set "
      "through it); prefer: use it where it is, warn once per pool where it is not; off: plain SETs"},
     VAL_ENUM, AT(server_enforcement), 0, 0, enforcements, NULL},
    {{"pgmesh", "server_key_file", "", false,
      "file holding the key shared with the pgmesh extension (hex, as scripts/server-setup.sh writes it)"},
     VAL_STRING, AT(server_key_file), 0, PATH_MAX - 1, NULL, NULL},
    {{"pgmesh", "log_level", "info", true, "error, warning, info or debug"},
     VAL_STRING, AT(log_level), 0, 16, log_levels, NULL},
    {{"pgmesh", "log_format", "text", true,
      "text (one line per event, as ever) or json (one JSON object per line: time, level, event, ids, fields)"},
     VAL_ENUM, AT(log_format), 0, 0, log_formats, NULL},
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
    {{"pgmesh", "watch_interval", "60s", true,
      "how often the watcher reads each [databases] cluster's replication slots; 0 turns slot polling off "
      "(collations are still compared at start and on reload)"},
     VAL_DURATION_MS, AT(watch_interval_ms), 0, MS_PER_DAY, NULL, NULL},
    {{"pgmesh", "slot_wal_warn", "10GB", true,
      "a replication slot holding back more WAL than this is logged (once per crossing); kB, MB, GB, TB"},
     VAL_SIZE_KB, AT(slot_wal_warn_kb), 1, 1024 * KB_PER_TB, NULL, NULL},
    {{"pgmesh", "watch_user", "", true,
      "server role the watcher logs in as; empty: the server_user of the first [roles] entry"},
     VAL_STRING, AT(watch_user), 0, PG_NAME_MAX, NULL, NULL},
    {{"pgmesh", "admin_roles", "", true,
      "comma-separated token roles whose clients may connect to the admin console (dbname=pgmesh); empty: none"},
     VAL_STRING, AT(admin_roles), 0, 1024, NULL, check_name_list},
    {{"pgmesh", "admin_users", "", true,
      "comma-separated OS users who may connect to the admin console over the Unix socket without a token "
      "(checked with SO_PEERCRED); empty: none"},
     VAL_STRING, AT(admin_users), 0, 1024, NULL, check_name_list},
    {{"pgmesh", "proxy_protocol", "off", true,
      "on: a TCP client from a proxy_protocol_trusted address may start with a PROXY protocol header (v1 or v2, "
      "as HAProxy's send-proxy sends it) whose source address then stands for the client's; a header from any "
      "other address is refused"},
     VAL_ENUM, AT(proxy_protocol), 0, 0, off_on, NULL},
    {{"pgmesh", "proxy_protocol_trusted", "", true,
      "comma-separated IPv4 and IPv6 CIDRs (127.0.0.1/32, ::1/128, 10.0.0.0/8) of the load balancers whose PROXY "
      "headers are believed; empty: none"},
     VAL_STRING, AT(proxy_protocol_trusted), 0, 2048, NULL, check_cidr_list},
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
// clang-format on
#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= CONFIG_KEYS_MAX, "the loader keeps a line per key: raise CONFIG_KEYS_MAX");

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

/* admin_roles, admin_users: names made of letters, digits, '_', '.', '-' (and '@' for roles that
 * look like e-mail addresses), separated by commas and optional spaces. */
static bool check_name_list(struct config *cfg, const char *value, char *err, size_t errlen)
{
    for (const char *p = value; *p;) {
        p += strspn(p, " ");
        size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-@");
        const char *q = p + n;
        q += strspn(q, " ");
        if (n == 0 || (*q != ',' && *q != '\0')) {
            snprintf(err, errlen, "invalid name list \"%s\": expected names separated by commas", value);
            return false;
        }
        p = *q ? q + 1 : q;
        if (*q == ',' && p[strspn(p, " ")] == '\0') {
            snprintf(err, errlen, "invalid name list \"%s\": ends with a comma", value);
            return false;
        }
    }
    return true;
}

/* "auto": the CPUs the affinity mask allows (a container's cpuset, taskset), not every core. */
static bool check_workers(struct config *cfg, const char *value, char *err, size_t errlen)
{
    if (strcmp(value, "auto") == 0) {
        cpu_set_t set;
        int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
        cfg->workers = n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : n;
        return true;
    }
    char *end;
    long n = strtol(value, &end, 10);
    if (end == value || *end != '\0' || n < 1 || n > WORKERS_MAX) {
        snprintf(err, errlen, "invalid workers \"%s\": expected auto or a number from 1 to %d", value,
                 WORKERS_MAX);
        return false;
    }
    cfg->workers = (int)n;
    return true;
}

static bool check_peers(struct config *cfg, const char *value, char *err, size_t errlen)
{
    (void)cfg;
    return peers_parse(value, NULL, NULL, err, errlen);
}

/* proxy_protocol_trusted: parsed here so a typo stops the load (or the reload) with its entry named. */
static bool check_cidr_list(struct config *cfg, const char *value, char *err, size_t errlen)
{
    char why[200];
    struct cidr_list list;
    if (!cidr_list_parse(value, &list, why, sizeof why)) {
        snprintf(err, errlen, "invalid proxy_protocol_trusted: %s", why);
        return false;
    }
    cfg->proxy_trusted = list;
    return true;
}

bool config_keys_name_listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, " ,");
        if (n > 0 && n == len && strncmp(p, name, n) == 0)
            return true;
        p += n;
    }
    return false;
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
        snprintf(err, errlen, "invalid duration for %s: \"%s\" (use e.g. 250ms, 30s, 10m, 2h, 1d)", k->d.name,
                 value);
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

static bool set_size(struct config *cfg, const struct config_key *k, const char *value, char *err, size_t errlen)
{
    int64_t kb;
    if (!units_parse_size_kb(value, &kb)) {
        snprintf(err, errlen, "invalid size for %s: \"%s\" (use e.g. 512MB, 10GB, 1TB; units kB, MB, GB, TB)",
                 k->d.name, value);
        return false;
    }
    if (kb < k->min || kb > k->max) {
        snprintf(err, errlen, "%s must be between %lldkB and %lldkB, not \"%s\"", k->d.name, (long long)k->min,
                 (long long)k->max, value);
        return false;
    }
    *(int64_t *)field(cfg, k) = kb;
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
    case VAL_STRING:
        return set_string(cfg, k, value, err, errlen);
    case VAL_INT:
        return set_int(cfg, k, value, err, errlen);
    case VAL_ENUM:
        return set_enum(cfg, k, value, err, errlen);
    case VAL_DURATION_MS:
    case VAL_DURATION_S:
        return set_duration(cfg, k, value, err, errlen);
    case VAL_SIZE_KB:
        return set_size(cfg, k, value, err, errlen);
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
    case VAL_SIZE_KB:
        return *(const int64_t *)cfield(a, k) == *(const int64_t *)cfield(b, k);
    }
    return false;
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
    case VAL_ENUM:
        *(int *)field(dst, k) = *(const int *)cfield(src, k);
        return true;
    case VAL_DURATION_MS:
    case VAL_DURATION_S:
    case VAL_SIZE_KB:
        *(int64_t *)field(dst, k) = *(const int64_t *)cfield(src, k);
        return true;
    }
    return false;
}

/* ---- for the loader ---- */

bool config_keys_init(struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < NKEYS; i++) {
        char why[400];
        if (!key_set(cfg, &keys[i], keys[i].d.default_value, why, sizeof why)) {
            snprintf(err, errlen, "default of %s: %s", keys[i].d.name, why);
            return false;
        }
    }
    return true;
}

void config_keys_destroy(struct config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].kind == VAL_STRING)
            free(*(char **)field(cfg, &keys[i]));
    if (cfg->tenant_regex_set)
        regfree(&cfg->tenant_regex);
}

bool config_keys_find(const char *section, const char *name, size_t *index)
{
    const struct config_key *k = find_key(section, name);
    if (!k)
        return false;
    *index = (size_t)(k - keys);
    return true;
}

bool config_keys_set(struct config *cfg, size_t index, const char *value, char *err, size_t errlen)
{
    return key_set(cfg, &keys[index], value, err, errlen);
}

/* ---- docs and reloads ---- */

size_t config_keys_count(void)
{
    return NKEYS;
}

const struct config_key_doc *config_keys_doc(size_t i)
{
    return i < NKEYS ? &keys[i].d : NULL;
}

void config_keys_format(const struct config *cfg, size_t i, char *buf, size_t len)
{
    const struct config_key *k = &keys[i];
    const void *f = cfield(cfg, k);
    switch (k->kind) {
    case VAL_STRING: {
        const char *v = *(char *const *)f;
        snprintf(buf, len, "%s", v ? v : "");
        return;
    }
    case VAL_INT:
        snprintf(buf, len, "%d", *(const int *)f);
        return;
    case VAL_ENUM:
        snprintf(buf, len, "%s", k->choices[*(const int *)f]);
        return;
    case VAL_DURATION_MS: {
        int64_t ms = *(const int64_t *)f;
        if (ms % 1000 == 0)
            snprintf(buf, len, "%llds", (long long)(ms / 1000));
        else
            snprintf(buf, len, "%lldms", (long long)ms);
        return;
    }
    case VAL_DURATION_S:
        snprintf(buf, len, "%llds", (long long)*(const int64_t *)f);
        return;
    case VAL_SIZE_KB: {
        /* The largest unit that divides it, as PostgreSQL shows memory settings. */
        int64_t kb = *(const int64_t *)f;
        static const char *const unit[] = {"kB", "MB", "GB", "TB"};
        int u = 0;
        while (u < 3 && kb != 0 && kb % 1024 == 0) {
            kb /= 1024;
            u++;
        }
        snprintf(buf, len, "%lld%s", (long long)kb, unit[u]);
        return;
    }
    }
    snprintf(buf, len, "?");
}

void config_keys_print_reference(FILE *out)
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

size_t config_keys_restart_changes(const struct config *old_cfg, const struct config *new_cfg, const char **names,
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

bool config_keys_keep_restart(struct config *new_cfg, const struct config *old_cfg, const char **names,
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
