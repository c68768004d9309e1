/* Config loader tests: the repo's pgmesh.ini, the key table's docs against it, durations and sizes,
 * and one error case per rule with the line it must name. Temp files come from mkstemp. Run from
 * the repository root (make unit does), or set PGMESH_INI to the example's path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/jwt.h"
#include "proxy/config.h"
#include "proxy/config_keys.h"
#include "proxy/roles.h"
#include "proxy/units.h"

static const char *example_path(void)
{
    const char *p = getenv("PGMESH_INI");
    return p ? p : "pgmesh.ini";
}

/* Writes text to a fresh temp file; the caller unlinks and frees the returned path. */
static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/pgmesh-test-config-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    return path;
}

static struct config *load_text(const char *text, char *err, size_t errlen, char **path_out)
{
    char *path = write_temp(text);
    struct config *cfg = config_load(path, err, errlen);
    unlink(path);
    if (path_out)
        *path_out = path;
    else
        free(path);
    return cfg;
}

static void test_example_loads(void **state)
{
    char err[512] = "";
    struct config *cfg = config_load(example_path(), err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->listen_addr, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 6432);
    assert_string_equal(cfg->unix_socket_dir, "/tmp");
    assert_int_equal(cfg->pool_mode, POOL_TRANSACTION);
    assert_int_equal(cfg->default_pool_size, 20);
    assert_int_equal(cfg->max_client_conn, 10000);
    assert_int_equal(cfg->query_wait_timeout_ms, 30000);
    assert_int_equal(cfg->server_idle_timeout_ms, 600000);
    assert_int_equal(cfg->server_connect_timeout_ms, 15000); /* default: not in the example */
    assert_int_equal(cfg->idle_transaction_timeout_ms, 0);   /* default: off, as PgBouncer's */
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->algorithms, "HS256");
    assert_int_equal(cfg->alg_mask, JWT_ALLOW_HS256);
    assert_string_equal(cfg->secret_file, "dev/jwt.secret");
    assert_string_equal(cfg->public_key_file, "");
    assert_string_equal(cfg->jwks_file, "");
    assert_string_equal(cfg->tenant_pattern, "^[A-Za-z0-9_.-]{1,64}$");
    assert_true(cfg->tenant_regex_set);
    assert_int_equal(regexec(&cfg->tenant_regex, "DE", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&cfg->tenant_regex, "D E", 0, NULL, 0), 0);
    assert_int_equal(cfg->claims_json, 0);
    assert_int_equal(cfg->verify_cache_size, 10000);
    assert_string_equal(cfg->issuer, "");
    assert_string_equal(cfg->audience, "");
    assert_int_equal(cfg->leeway_s, 30);
    assert_string_equal(cfg->tenant_claim, "tenant");
    assert_string_equal(cfg->role_claim, "role");

    assert_int_equal(cfg->ndatabases, 1);
    const struct db_config *db = config_find_database(cfg, "media_analytics");
    assert_non_null(db);
    assert_string_equal(db->conninfo, "host=127.0.0.1 port=5432 dbname=media_analytics");
    assert_null(config_find_database(cfg, "media"));
    assert_null(config_find_database(cfg, "MEDIA_ANALYTICS"));

    assert_int_equal(cfg->nroles, 2);
    const struct role_config *r = config_find_role(cfg, "regional_analyst");
    assert_non_null(r);
    assert_string_equal(r->server_user, "marketing_domain_role");
    assert_int_equal(r->statement_timeout_ms, 30000);
    assert_int_equal(r->work_mem_kb, 128 * 1024);
    r = config_find_role(cfg, "global_corporate_audit");
    assert_non_null(r);
    assert_string_equal(r->server_user, "audit_role");
    assert_int_equal(r->statement_timeout_ms, 300000);
    assert_int_equal(r->work_mem_kb, 256 * 1024);
    assert_null(config_find_role(cfg, "regional"));
    assert_ptr_equal(cfg->roles, config_find_role(cfg, "regional_analyst")); /* file order */
    config_free(cfg);
    config_free(NULL);
}

/* True when the example sets "name =" in [section], shows its default commented out ("; name ="),
 * or names it as the alternative to another key ("; or name ="). */
static bool example_mentions(const char *section, const char *name)
{
    FILE *f = fopen(example_path(), "r");
    assert_non_null(f);
    char line[512], current[64] = "", want[96], commented[100];
    bool found = false;
    snprintf(want, sizeof want, "%s =", name);
    snprintf(commented, sizeof commented, "; %s", want);
    while (!found && fgets(line, sizeof line, f)) {
        if (line[0] == '[') {
            snprintf(current, sizeof current, "%.*s", (int)strcspn(line + 1, "]"), line + 1);
            continue;
        }
        if (strcmp(current, section) != 0)
            continue;
        if (strncmp(line, want, strlen(want)) == 0 || strncmp(line, commented, strlen(commented)) == 0)
            found = true;
        const char *c = strstr(line, "; or ");
        if (c && strncmp(c + 5, want, strlen(want)) == 0)
            found = true;
    }
    fclose(f);
    return found;
}

static void test_every_key_documented(void **state)
{
    size_t n = config_keys_count();
    assert_true(n >= 18);
    assert_null(config_keys_doc(n));
    char *ref = NULL;
    size_t ref_len = 0;
    FILE *out = open_memstream(&ref, &ref_len);
    assert_non_null(out);
    config_keys_print_reference(out);
    fclose(out);
    for (size_t i = 0; i < n; i++) {
        const struct config_key_doc *d = config_keys_doc(i);
        assert_non_null(d);
        bool section_ok = strcmp(d->section, "pgmesh") == 0 || strcmp(d->section, "jwt") == 0;
        if (!section_ok)
            fail_msg("key %s has section [%s]", d->name, d->section);
        if (!d->doc || !d->doc[0] || strchr(d->doc, '\n') || strchr(d->doc, '|') ||
            d->doc[strlen(d->doc) - 1] == '.')
            fail_msg("key [%s] %s needs a one-line doc without a final period", d->section, d->name);
        /* The example is where users look first: every key is in it, set or commented out. */
        if (!example_mentions(d->section, d->name))
            fail_msg("key [%s] %s is missing from pgmesh.ini (set it, or show its default as \"; %s = ...\")",
                     d->section, d->name, d->name);
        char row[160];
        snprintf(row, sizeof row, "| [%s] | `%s` | %s%s%s | %s |", d->section, d->name,
                 d->default_value[0] ? "`" : "", d->default_value[0] ? d->default_value : "(empty)",
                 d->default_value[0] ? "`" : "", d->reloadable ? "reloads" : "restart");
        if (!strstr(ref, row))
            fail_msg("reference lacks %s", row);
    }
    assert_non_null(strstr(ref, "| Section | Key | Default | On SIGHUP | Description |"));
    assert_non_null(strstr(ref, "| [pgmesh] | `server_connect_timeout` | `15s` | reloads |"));
    assert_non_null(strstr(ref, "| [pgmesh] | `listen_port` | `6432` | restart |"));
    assert_non_null(strstr(ref, "| [jwt] | `issuer` | (empty) | reloads |"));
    assert_non_null(strstr(ref, "| [jwt] | `verify_cache_size` | `10000` | restart |"));
    free(ref);
}

/* Every [pgmesh]/[jwt] key of the example must be in the table (the load test catches unknown
 * keys too, but this names them). */
static void test_example_keys_in_table(void **state)
{
    FILE *f = fopen(example_path(), "r");
    assert_non_null(f);
    char line[512], section[64] = "";
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '[') {
            snprintf(section, sizeof section, "%.*s", (int)strcspn(line + 1, "]"), line + 1);
            continue;
        }
        if ((strcmp(section, "pgmesh") != 0 && strcmp(section, "jwt") != 0) || line[0] == ';' ||
            !strchr(line, '='))
            continue;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(line, " ="), line);
        bool found = false;
        for (size_t i = 0; i < config_keys_count(); i++)
            if (strcmp(config_keys_doc(i)->section, section) == 0 && strcmp(config_keys_doc(i)->name, name) == 0)
                found = true;
        if (!found)
            fail_msg("[%s] %s is in pgmesh.ini but not in the key table", section, name);
    }
    fclose(f);
}

struct num_case {
    const char *text;
    bool ok;
    int64_t value;
};

static void test_durations(void **state)
{
    static const struct num_case cases[] = {
        {"30s", true, 30000},
        {"10m", true, 600000},
        {"5min", true, 300000},
        {"250ms", true, 250},
        {"2h", true, 7200000},
        {"1d", true, 86400000},
        {"45", true, 45000},
        {"0", true, 0},
        {"0ms", true, 0},
        {"007s", true, 7000},
        {"9223372036854775807ms", true, INT64_MAX},
        {"", false, 0},
        {"s", false, 0},
        {"-5s", false, 0},
        {"+5s", false, 0},
        {"5x", false, 0},
        {"5 s", false, 0},
        {" 5s", false, 0},
        {"5s ", false, 0},
        {"1.5h", false, 0},
        {"5S", false, 0},
        {"5sec", false, 0},
        {"5mins", false, 0},
        {"9223372036854775807", false, 0},
        {"9223372036854775808ms", false, 0},
        {"106751991167301d", false, 0},
        {"0x10", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        bool ok = units_parse_duration_ms(cases[i].text, &v);
        if (ok != cases[i].ok || (ok && v != cases[i].value))
            fail_msg("duration \"%s\": got ok=%d value=%lld", cases[i].text, ok, (long long)v);
        if (!ok && v != -1)
            fail_msg("duration \"%s\": output written on failure", cases[i].text);
    }
    int64_t v;
    assert_false(units_parse_duration_ms(NULL, &v));
}

static void test_sizes(void **state)
{
    static const struct num_case cases[] = {
        {"128MB", true, 131072},
        {"64kB", true, 64},
        {"1GB", true, 1048576},
        {"1TB", true, 1073741824},
        {"4096", true, 4096},
        {"0", true, 0},
        {"", false, 0},
        {"MB", false, 0},
        {"-1MB", false, 0},
        {"128mb", false, 0},
        {"128KB", false, 0},
        {"128 MB", false, 0},
        {"1.5GB", false, 0},
        {"128B", false, 0},
        {"12PB", false, 0},
        {"9223372036854775807GB", false, 0},
        {"99999999999999999999", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -1;
        bool ok = units_parse_size_kb(cases[i].text, &v);
        if (ok != cases[i].ok || (ok && v != cases[i].value))
            fail_msg("size \"%s\": got ok=%d value=%lld", cases[i].text, ok, (long long)v);
    }
}

#define PGMESH "[pgmesh]\nlisten_port = 6432\n"                /* lines 1-2 */
#define JWT "[jwt]\nsecret_file = dev/jwt.secret\n"            /* 2 lines */
#define DBS "[databases]\nmain = host=localhost dbname=main\n" /* 2 lines */
#define ROLES "[roles]\nanalyst = server_user=reader\n"        /* 2 lines */

/* Defaults come from the table when a key is absent. */
static void test_minimal_and_defaults(void **state)
{
    char err[512] = "";
    struct config *cfg = load_text(PGMESH JWT DBS ROLES, err, sizeof err, NULL);
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->listen_addr, "127.0.0.1");
    assert_string_equal(cfg->unix_socket_dir, "/tmp");
    assert_int_equal(cfg->pool_mode, POOL_TRANSACTION);
    assert_int_equal(cfg->server_connect_timeout_ms, 15000);
    assert_int_equal(cfg->server_idle_timeout_ms, 600000);
    assert_int_equal(cfg->alg_mask, JWT_ALLOW_HS256);
    assert_int_equal(cfg->leeway_s, 30);
    assert_int_equal(cfg->watch_interval_ms, 60000);
    assert_int_equal(cfg->slot_wal_warn_kb, INT64_C(10) * 1024 * 1024);
    assert_string_equal(cfg->watch_user, "");
    const struct role_config *r = config_find_role(cfg, "analyst");
    assert_non_null(r);
    assert_int_equal(r->statement_timeout_ms, 0);
    assert_int_equal(r->work_mem_kb, 0);
    config_free(cfg);
}

static void test_values_and_comments(void **state)
{
    char err[512] = "";
    struct config *cfg = load_text("[pgmesh]\n"
                                   "  unix_socket_dir =    ; empty disables\n"
                                   "pool_mode = session\t; tab before the comment\n"
                                   "log_level = debug\n"
                                   "listen_addr = *\n"
                                   "# hash comment line\n"
                                   "server_connect_timeout = 250ms\r\n"
                                   "idle_transaction_timeout = 2min\n"
                                   "watch_interval = 0\n"
                                   "slot_wal_warn = 512MB\n"
                                   "watch_user = monitor\n"
                                   "[jwt]\n"
                                   "algorithms = RS256, ES256\n"
                                   "public_key_file = keys/idp.pem\n"
                                   "issuer = https://idp.example/a;b\n"
                                   "leeway = 2min\n" DBS "[roles]\n"
                                   "a = work_mem=64kB   server_user=x\tstatement_timeout=250ms\n",
                                   err, sizeof err, NULL);
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->unix_socket_dir, "");
    assert_int_equal(cfg->pool_mode, POOL_SESSION);
    assert_string_equal(cfg->log_level, "debug");
    assert_string_equal(cfg->listen_addr, "*");
    assert_int_equal(cfg->server_connect_timeout_ms, 250);
    assert_int_equal(cfg->idle_transaction_timeout_ms, 120000);
    assert_int_equal(cfg->watch_interval_ms, 0);
    assert_int_equal(cfg->slot_wal_warn_kb, 512 * 1024);
    assert_string_equal(cfg->watch_user, "monitor");
    assert_int_equal(cfg->alg_mask, JWT_ALLOW_RS256 | JWT_ALLOW_ES256);
    assert_string_equal(cfg->public_key_file, "keys/idp.pem");
    assert_string_equal(cfg->issuer, "https://idp.example/a;b"); /* ';' without a blank is data */
    assert_int_equal(cfg->leeway_s, 120);
    const struct role_config *r = config_find_role(cfg, "a");
    assert_non_null(r);
    assert_string_equal(r->server_user, "x");
    assert_int_equal(r->work_mem_kb, 64);
    assert_int_equal(r->statement_timeout_ms, 250);

    char err2[512] = "";
    struct config *cfg2 =
        load_text("[pgmesh]\nlisten_port = 7000\npool_mode = transaction\nlog_level = info\n" JWT DBS ROLES, err2,
                  sizeof err2, NULL);
    if (!cfg2)
        fail_msg("%s", err2);
    const char *names[8];
    size_t n = config_keys_restart_changes(cfg, cfg2, names, 8);
    assert_int_equal(n, 4); /* listen_addr, listen_port, unix_socket_dir, pool_mode; not log_level */
    assert_string_equal(names[0], "listen_addr");
    assert_string_equal(names[1], "listen_port");
    assert_string_equal(names[2], "unix_socket_dir");
    assert_string_equal(names[3], "pool_mode");
    assert_int_equal(config_keys_restart_changes(cfg, cfg, names, 8), 0);

    /* A reload of cfg2 over cfg keeps cfg's restart-only values and takes the rest. */
    size_t kept = 0;
    assert_true(config_keys_keep_restart(cfg2, cfg, names, 2, &kept));
    assert_int_equal(kept, 4);
    assert_string_equal(names[0], "listen_addr");
    assert_string_equal(names[1], "listen_port");
    assert_string_equal(cfg2->listen_addr, "*");
    assert_int_equal(cfg2->listen_port, 6432);
    assert_string_equal(cfg2->unix_socket_dir, "");
    assert_int_equal(cfg2->pool_mode, POOL_SESSION);
    assert_string_equal(cfg2->log_level, "info");
    assert_int_equal(config_keys_restart_changes(cfg, cfg2, names, 8), 0);
    assert_true(config_keys_keep_restart(cfg2, cfg, names, 8, &kept));
    assert_int_equal(kept, 0);
    config_free(cfg2);
    config_free(cfg);
}

struct err_case {
    const char *what;
    const char *text;
    int line; /* 0: error names no line */
    const char *needle;
};

#define LONG_NAME "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 64 bytes */

static const struct err_case err_cases[] = {
    {"unknown key", PGMESH "listen_prot = 5\n" JWT DBS ROLES, 3, "unknown key \"listen_prot\" in [pgmesh]"},
    {"bad duration", PGMESH "query_wait_timeout = 30 seconds\n" JWT DBS ROLES, 3, "invalid duration"},
    {"duration unit", PGMESH "server_idle_timeout = 10x\n" JWT DBS ROLES, 3, "server_idle_timeout"},
    {"bad port", "[pgmesh]\nlisten_addr = 127.0.0.1\nlisten_port = 70000\n" JWT DBS ROLES, 3,
     "listen_port must be an integer from 1 to 65535"},
    {"port zero", "[pgmesh]\nlisten_port = 0\n" JWT DBS ROLES, 2, "listen_port"},
    {"size unit", PGMESH "slot_wal_warn = 10G\n" JWT DBS ROLES, 3, "invalid size for slot_wal_warn: \"10G\""},
    {"size lower case", PGMESH "slot_wal_warn = 10gb\n" JWT DBS ROLES, 3, "invalid size for slot_wal_warn"},
    {"size zero", PGMESH "slot_wal_warn = 0\n" JWT DBS ROLES, 3, "slot_wal_warn must be between 1kB and"},
    {"size overflow", PGMESH "slot_wal_warn = 99999999999999TB\n" JWT DBS ROLES, 3, "invalid size"},
    {"watch_interval", PGMESH "watch_interval = -1s\n" JWT DBS ROLES, 3, "invalid duration for watch_interval"},
    {"watch_user too long", PGMESH "watch_user = " LONG_NAME "\n" JWT DBS ROLES, 3,
     "watch_user must be 0 to 63 bytes long, not 64"},
    {"port garbage", "[pgmesh]\nlisten_port = 64x\n" JWT DBS ROLES, 2, "listen_port"},
    {"role without server_user", PGMESH JWT DBS "[roles]\nok = server_user=a\nbad = statement_timeout=30s\n", 9,
     "role \"bad\": server_user is required"},
    {"role unknown setting", PGMESH JWT DBS "[roles]\nbad = server_user=a search_path=x\n", 8,
     "unknown role setting \"search_path\""},
    {"role bad token", PGMESH JWT DBS "[roles]\nbad = server_user=a junk\n", 8, "expected key=value"},
    {"role twice", PGMESH JWT DBS "[roles]\nr = server_user=a\nr = server_user=b\n", 9, "duplicate role"},
    {"role bad work_mem", PGMESH JWT DBS "[roles]\nr = server_user=a work_mem=12\n", 8, "invalid work_mem"},
    {"role server_user twice", PGMESH JWT DBS "[roles]\nr = server_user=a server_user=b\n", 8,
     "server_user given twice"},
    {"role work_mem twice", PGMESH JWT DBS "[roles]\nr = server_user=a work_mem=1MB work_mem=2MB\n", 8,
     "work_mem given twice"},
    {"role limit twice",
     PGMESH JWT DBS "[roles]\nr = server_user=a max_transaction_age=1h max_transaction_age=2h\n", 8,
     "max_transaction_age given twice"},
    {"role bad max_client_conn", PGMESH JWT DBS "[roles]\nr = server_user=a max_client_conn=0\n", 8,
     "invalid max_client_conn \"0\" (a positive integer)"},
    {"role bad idle timeout", PGMESH JWT DBS "[roles]\nr = server_user=a idle_in_transaction_timeout=soon\n", 8,
     "invalid idle_in_transaction_timeout \"soon\" (use e.g. 30s, 10min)"},
    {"role long server_user",
     PGMESH JWT DBS "[roles]\nr = server_user="
                    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\n",
     8, "at most 63 bytes"},
    {"role zero timeout", PGMESH JWT DBS "[roles]\nr = server_user=a statement_timeout=0\n", 8,
     "invalid statement_timeout"},
    {"conninfo with user", PGMESH JWT "[databases]\nmain = host=localhost user=postgres dbname=main\n" ROLES, 6,
     "must not set user"},
    {"conninfo URI with user", PGMESH JWT "[databases]\nmain = postgresql://postgres@localhost/main\n" ROLES, 6,
     "must not set user"},
    {"conninfo garbage", PGMESH JWT "[databases]\nmain = host=localhost bogus=1\n" ROLES, 6,
     "invalid conninfo for database \"main\""},
    {"duplicate database", PGMESH JWT "[databases]\nmain = host=a\nmain = host=b\n" ROLES, 7,
     "duplicate database \"main\""},
    {"both key files", PGMESH "[jwt]\nsecret_file = a\nalgorithms = HS256\npublic_key_file = b.pem\n" DBS ROLES, 6,
     "only one of secret_file, public_key_file and jwks_file"},
    {"jwks and public key",
     PGMESH "[jwt]\njwks_file = k.json\nalgorithms = RS256\npublic_key_file = b.pem\n" DBS ROLES, 6,
     "only one of secret_file, public_key_file and jwks_file"},
    {"HS with jwks", PGMESH "[jwt]\njwks_file = k.json\nalgorithms = HS256\n" DBS ROLES, 5,
     "jwks_file allow only"},
    {"bad tenant_pattern", PGMESH "[jwt]\nsecret_file = a\ntenant_pattern = ^[A-Z{2}$\n" DBS ROLES, 5,
     "invalid tenant_pattern \"^[A-Z{2}$\""},
    {"empty tenant_pattern", PGMESH "[jwt]\nsecret_file = a\ntenant_pattern =\n" DBS ROLES, 5,
     "tenant_pattern must be 1 to 255 bytes"},
    {"bad claims_json", PGMESH "[jwt]\nsecret_file = a\nclaims_json = yes\n" DBS ROLES, 5,
     "invalid claims_json \"yes\" (expected one of: off, on)"},
    {"cache too big", PGMESH "[jwt]\nsecret_file = a\nverify_cache_size = 2000000\n" DBS ROLES, 5,
     "verify_cache_size must be an integer from 0 to 1000000"},
    {"no key file", PGMESH "[jwt]\nissuer = x\n" DBS ROLES, 3, "needs secret_file"},
    {"unknown algorithm", PGMESH "[jwt]\nsecret_file = a\nalgorithms = HS256, XY999\n" DBS ROLES, 5,
     "invalid algorithms"},
    {"none algorithm", PGMESH "[jwt]\nalgorithms = none\nsecret_file = a\n" DBS ROLES, 4, "\"none\""},
    {"empty algorithms", PGMESH "[jwt]\nalgorithms =\nsecret_file = a\n" DBS ROLES, 4, "invalid algorithms"},
    {"HS with public key", PGMESH "[jwt]\npublic_key_file = k.pem\nalgorithms = HS256\n" DBS ROLES, 5,
     "need secret_file"},
    {"RS with secret", PGMESH "[jwt]\nsecret_file = s\nalgorithms = RS256\n" DBS ROLES, 5, "need public_key_file"},
    {"duplicate key", PGMESH "listen_port = 6433\n" JWT DBS ROLES, 3,
     "duplicate key \"listen_port\" (first at line 2)"},
    {"unknown section", PGMESH "[pool]\n" JWT DBS ROLES, 3, "unknown section [pool]"},
    {"duplicate section", PGMESH JWT DBS ROLES "[pgmesh]\n", 9, "duplicate section [pgmesh]"},
    {"key outside section", "listen_port = 6432\n" JWT DBS ROLES, 1, "outside any section"},
    {"empty databases", PGMESH JWT "[databases]\n; nothing\n" ROLES, 5, "[databases] is empty"},
    {"missing roles", PGMESH JWT DBS, 0, "[roles] is missing"},
    {"bad pool_mode", "[pgmesh]\npool_mode = statement\n" JWT DBS ROLES, 2,
     "expected one of: transaction, session"},
    {"bad log_level", "[pgmesh]\nlog_level = verbose\n" JWT DBS ROLES, 2, "log_level"},
    {"leeway fraction", PGMESH "[jwt]\nsecret_file = a\nleeway = 1500ms\n" DBS ROLES, 5,
     "whole number of seconds"},
    {"leeway too big", PGMESH "[jwt]\nsecret_file = a\nleeway = 2h\n" DBS ROLES, 5, "leeway must be between"},
    {"long socket dir",
     "[pgmesh]\nunix_socket_dir = /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" JWT DBS ROLES,
     2, "unix_socket_dir must be 0 to 92 bytes"},
    {"long claim name",
     PGMESH "[jwt]\nsecret_file = a\ntenant_claim = "
            "ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\n" DBS ROLES,
     5, "tenant_claim must be 1 to 64 bytes"},
    {"long name",
     PGMESH JWT "[databases]\n"
                "dddddddddddddddddddddddddddddddddddddddddddddddddd = host=a\n" ROLES,
     6, "too long"},
    {"long line",
     PGMESH JWT
     "[databases]\nmain = host=a options='"
     "-c xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
     "\n" ROLES,
     6, "line is too long"},
    {"no listener", "[pgmesh]\nlisten_addr =\nunix_socket_dir =\n" JWT DBS ROLES, 2, "nothing to listen on"},
    {"syntax error", PGMESH "listen_port 6432\n" JWT DBS ROLES, 3, "syntax error"},
    {"continuation line", PGMESH "listen_addr = 127.0.0.1\n    ::1\n" JWT DBS ROLES, 4, "missing name"},
    {"bad proxy_protocol", PGMESH "proxy_protocol = v2\n" JWT DBS ROLES, 3,
     "invalid proxy_protocol \"v2\" (expected one of: off, on)"},
    {"bad trusted address", PGMESH "proxy_protocol_trusted = 127.0.0.1/32, 10.0.0.300/8\n" JWT DBS ROLES, 3,
     "invalid proxy_protocol_trusted: \"10.0.0.300/8\" is not an IPv4 or IPv6 address"},
    {"trusted prefix too long", PGMESH "proxy_protocol_trusted = ::1/129\n" JWT DBS ROLES, 3,
     "invalid proxy_protocol_trusted: \"::1/129\""},
    {"trusted host bits", PGMESH "proxy_protocol_trusted = 10.1.2.3/8\n" JWT DBS ROLES, 3,
     "\"10.1.2.3/8\" has bits set past its /8 prefix"},
    {"trusted empty entry", PGMESH "proxy_protocol_trusted = 127.0.0.1,,::1\n" JWT DBS ROLES, 3,
     "invalid proxy_protocol_trusted: empty entry"},
    {"trusted host name", PGMESH "proxy_protocol_trusted = localhost\n" JWT DBS ROLES, 3,
     "\"localhost\" is not an IPv4 or IPv6 address"},
    {"first error wins", PGMESH "bogus = 1\nlisten_port = x\n" JWT DBS ROLES, 3, "unknown key \"bogus\""},
};

static void test_errors(void **state)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        const struct err_case *c = &err_cases[i];
        char err[512] = "", *path = NULL, want[600];
        struct config *cfg = load_text(c->text, err, sizeof err, &path);
        if (cfg) {
            print_error("%s: loaded, expected an error\n", c->what);
            config_free(cfg);
            failures++;
        }
        if (c->line)
            snprintf(want, sizeof want, "%s:%d: ", path, c->line);
        else
            snprintf(want, sizeof want, "%s: ", path);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, c->needle)) {
            print_error("%s: got \"%s\", want prefix \"%s\" and \"%s\"\n", c->what, err, want, c->needle);
            failures++;
        }
        free(path);
    }
    assert_int_equal(failures, 0);
}

/* jwks_file, tenant_pattern (compiled at load, reloadable), claims_json, verify_cache_size. */
static void test_jwt_extensions(void **state)
{
    char err[512] = "";
    struct config *cfg = load_text(PGMESH "[jwt]\njwks_file = idp.json\nalgorithms = RS256, ES384\n"
                                          "tenant_pattern = ^[A-Z]{2}$\nclaims_json = on\n"
                                          "verify_cache_size = 0\n" DBS ROLES,
                                   err, sizeof err, NULL);
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->jwks_file, "idp.json");
    assert_string_equal(cfg->secret_file, "");
    assert_int_equal(cfg->alg_mask, JWT_ALLOW_RS256 | JWT_ALLOW_ES384);
    assert_string_equal(cfg->tenant_pattern, "^[A-Z]{2}$");
    assert_int_equal(regexec(&cfg->tenant_regex, "DE", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&cfg->tenant_regex, "de", 0, NULL, 0), 0);
    assert_int_equal(cfg->claims_json, 1);
    assert_int_equal(cfg->verify_cache_size, 0);
    config_free(cfg);
}

/* Every role option and pin is compared: a reload re-applies a role to its clients only when it
 * changed. */
static void test_role_equal(void **state)
{
    static const char *const variants[] = {
        "server_user=b statement_timeout=30s work_mem=1MB pin.jit=off",
        "server_user=a statement_timeout=31s work_mem=1MB pin.jit=off",
        "server_user=a statement_timeout=30s work_mem=2MB pin.jit=off",
        "server_user=a statement_timeout=30s work_mem=1MB pin.jit=off idle_in_transaction_timeout=1min",
        "server_user=a statement_timeout=30s work_mem=1MB pin.jit=off max_transaction_age=1h",
        "server_user=a statement_timeout=30s work_mem=1MB pin.jit=off max_client_conn=5",
        "server_user=a statement_timeout=30s work_mem=1MB",
        "server_user=a statement_timeout=30s work_mem=1MB pin.jit=on",
        "server_user=a statement_timeout=30s work_mem=1MB pin.jit_above_cost=off",
        "server_user=a statement_timeout=30s work_mem=1MB pin.jit=off pin.geqo=off",
    };
    struct role_config base, other;
    char err[512];
    if (!roles_make_entry("r", "work_mem=1024kB pin.jit=off statement_timeout=30000ms server_user=a", &base, err,
                          sizeof err))
        fail_msg("%s", err);
    assert_true(roles_equal(&base, &base));
    assert_true(roles_make_entry("r2", "server_user=a statement_timeout=30s work_mem=1MB pin.jit=off", &other, err,
                                 sizeof err));
    assert_true(roles_equal(&base, &other));
    roles_free_entry(&other);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        if (!roles_make_entry("r", variants[i], &other, err, sizeof err))
            fail_msg("%s", err);
        if (roles_equal(&base, &other))
            fail_msg("\"%s\" compares equal to the base role", variants[i]);
        roles_free_entry(&other);
    }
    roles_free_entry(&base);
    roles_free_entry(NULL);
}

static void test_missing_file(void **state)
{
    char err[256] = "";
    assert_null(config_load("/nonexistent/pgmesh.ini", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/pgmesh.ini: cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test(test_every_key_documented),
        cmocka_unit_test(test_example_keys_in_table),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_minimal_and_defaults),
        cmocka_unit_test(test_values_and_comments),
        cmocka_unit_test(test_jwt_extensions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_role_equal),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
