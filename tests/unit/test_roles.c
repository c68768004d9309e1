/* Unit tests for proxy/roles.c's pinned settings (pin.<setting>=<value> on a [roles] line): lines
 * that load, with their pins in file order; lines refused, each with the text that tells the user
 * what to fix; and through config_load, the file and line of the mistake, the limit on settings
 * shared by the roles of one server_user, and the union of pinned names the guard is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/config.h"
#include "proxy/roles.h"

struct pin_want {
    const char *name, *value;
};

static void test_good_lines(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        struct pin_want pins[4];
        size_t npins;
    } cases[] = {
        {"server_user=marketing_domain_role statement_timeout=30s work_mem=128MB pin.hash_mem_multiplier=1 "
         "pin.max_parallel_workers_per_gather=0 pin.temp_file_limit=1GB",
         {{"hash_mem_multiplier", "1"}, {"max_parallel_workers_per_gather", "0"}, {"temp_file_limit", "1GB"}},
         3},
        {"pin.jit=off server_user=a", {{"jit", "off"}}, 1},
        {"server_user=a\tpin.auto_explain.log_min_duration=250ms",
         {{"auto_explain.log_min_duration", "250ms"}},
         1},
        {"server_user=a pin._x1=1 pin.a_2.b_3=x", {{"_x1", "1"}, {"a_2.b_3", "x"}}, 2},
        /* the value is PostgreSQL's to judge; quotes and = are kept as written */
        {"server_user=a pin.default_transaction_read_only=on pin.x.y='it''s'=1",
         {{"default_transaction_read_only", "on"}, {"x.y", "'it''s'=1"}},
         2},
        {"server_user=a pin.maintenance_work_mem=64MB", {{"maintenance_work_mem", "64MB"}}, 1},
        {"server_user=a pin.default_text_search_config=pg_catalog.english",
         {{"default_text_search_config", "pg_catalog.english"}},
         1},
        {"server_user=a", {{NULL, NULL}}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct role_config r;
        char err[512] = "";
        if (!roles_make_entry("analyst", cases[i].line, &r, err, sizeof err))
            fail_msg("\"%s\": %s", cases[i].line, err);
        assert_int_equal(r.npins, cases[i].npins);
        for (size_t k = 0; k < r.npins; k++) {
            assert_string_equal(r.pins[k].name, cases[i].pins[k].name);
            assert_string_equal(r.pins[k].value, cases[i].pins[k].value);
        }
        roles_free_entry(&r);
    }
}

static void test_fourteen_pins(void **state)
{
    (void)state;
    char line[1024] = "server_user=a";
    for (int i = 0; i < ROLE_PINS_MAX; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " pin.s%d=%d", i, i);
    struct role_config r;
    char err[512] = "";
    if (!roles_make_entry("analyst", line, &r, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(r.npins, ROLE_PINS_MAX);
    assert_string_equal(r.pins[ROLE_PINS_MAX - 1].name, "s13");
    roles_free_entry(&r);
    strcat(line, " pin.one_more=1");
    assert_false(roles_make_entry("analyst", line, &r, err, sizeof err));
    assert_non_null(strstr(err, "more than 14 pinned settings"));
}

static void test_bad_lines(void **state)
{
    (void)state;
    static const struct {
        const char *line, *needle;
    } cases[] = {
        {"server_user=a pin.Hash_Mem_Multiplier=1", "write setting names in lower case"},
        {"server_user=a pin.hash-mem=1", "\"pin.hash-mem\" is not a setting name"},
        {"server_user=a pin.a.b.c=1", "\"pin.a.b.c\" is not a setting name"},
        {"server_user=a pin..a=1", "\"pin..a\" is not a setting name"},
        {"server_user=a pin.a.=1", "\"pin.a.\" is not a setting name"},
        {"server_user=a pin.1abc=1", "\"pin.1abc\" is not a setting name"},
        {"server_user=a pin.a.1b=1", "\"pin.a.1b\" is not a setting name"},
        {"server_user=a pin.=1", "\"pin.\" is not a setting name"},
        {"server_user=a pin.x;y=1", "is not a setting name"},
        {"server_user=a pin.x\"y=1", "is not a setting name"},
        {"server_user=a pin.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1",
         "is longer than 63 bytes"},
        {"server_user=a pin.hash_mem_multiplier=", "expected key=value"},
        {"server_user=a pin.hash_mem_multiplier", "expected key=value"},
        {"server_user=a pin.jit=on pin.jit=off", "pin.jit given twice"},
        {"server_user=a pin.statement_timeout=1s", "pin.statement_timeout: the role's statement_timeout has a key "
                                                   "of its own: write statement_timeout=<value>"},
        {"server_user=a pin.work_mem=abc", "the role's work_mem has a key of its own: write work_mem=<value>"},
        {"server_user=a pin.sort_mem=1MB", "the role's work_mem has a key of its own: write work_mem=<value>"},
        {"server_user=a pin.Statement_Timeout=1s", "has a key of its own"},
        {"server_user=a pin.request.jwt.claim.tenant=DE",
         "pin.request.jwt.claim.tenant: pgmesh manages request.jwt.claim.tenant itself"},
        {"server_user=a pin.request.jwt.x=1", "pgmesh manages request.jwt.x itself"},
        {"server_user=a pin.role=audit_role", "pin.role: pgmesh manages role itself, it cannot be pinned"},
        {"server_user=a pin.session_authorization=x", "pgmesh manages session_authorization itself"},
        {"server_user=a pin.idle_in_transaction_session_timeout=0", "pgmesh manages"},
        {"server_user=a pin.standard_conforming_strings=on", "pgmesh manages"},
        {"server_user=a pin.vacuum_mem=1MB", "write pin.maintenance_work_mem"},
        {"server_user=a pin.search_path=core", "pin.search_path: search_path follows each client's own session"},
        {"server_user=a pin.application_name=x", "follows each client's own session"},
        {"server_user=a pin.client_encoding=UTF8", "follows each client's own session"},
        {"server_user=a pin.datestyle=ISO", "follows each client's own session"},
        {"server_user=a pin.timezone=UTC", "follows each client's own session"},
        {"server_user=a pin.transaction_read_only=on", "write pin.default_transaction_read_only"},
        {"server_user=a pin.x=\xff\xfe", "is not valid UTF-8"},
        {"server_user=a pins.x=1", "unknown role setting \"pins.x\""},
        {"server_user=a x=1", "or pin.<setting>=<value>"},
        {"pin.jit=off", "server_user is required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct role_config r = {0};
        char err[512] = "";
        if (roles_make_entry("analyst", cases[i].line, &r, err, sizeof err)) {
            roles_free_entry(&r);
            fail_msg("\"%s\" was accepted", cases[i].line);
        }
        if (strncmp(err, "role \"analyst\": ", 16) != 0 || !strstr(err, cases[i].needle))
            fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].line, err, cases[i].needle);
        assert_null(r.name); /* untouched */
    }
}

static struct config *load_text(const char *text, char *err, size_t errlen, char path[64])
{
    snprintf(path, 64, "/tmp/pgmesh-test-roles-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    struct config *cfg = config_load(path, err, errlen);
    unlink(path);
    return cfg;
}

#define HEAD                                                                                                      \
    "[pgmesh]\nlisten_port = 6432\n[jwt]\nsecret_file = dev/jwt.secret\n[databases]\nmain = host=localhost "      \
    "dbname=main\n" /* lines 1-6 */

/* The guard gets every role's pinned names, each once, in file order. */
static void test_config_union(void **state)
{
    (void)state;
    char err[512] = "", path[64];
    struct config *cfg = load_text(HEAD "[roles]\n"
                                        "a = server_user=x pin.hash_mem_multiplier=1 pin.jit=off\n"
                                        "b = server_user=y pin.jit=on pin.temp_file_limit=1GB\n"
                                        "c = server_user=x\n",
                                   err, sizeof err, path);
    if (!cfg)
        fail_msg("%s", err);
    assert_int_equal(cfg->npinned, 3);
    assert_string_equal(cfg->pinned[0], "hash_mem_multiplier");
    assert_string_equal(cfg->pinned[1], "jit");
    assert_string_equal(cfg->pinned[2], "temp_file_limit");
    const struct role_config *b = config_find_role(cfg, "b");
    assert_non_null(b);
    assert_int_equal(b->npins, 2);
    assert_string_equal(b->pins[0].value, "on");
    assert_int_equal(config_find_role(cfg, "c")->npins, 0);
    config_free(cfg);

    cfg = load_text(HEAD "[roles]\na = server_user=x\n", err, sizeof err, path);
    assert_non_null(cfg);
    assert_int_equal(cfg->npinned, 0);
    assert_null(cfg->pinned);
    config_free(cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    char err[512] = "", path[64], want[128];
    /* the mistake's line, the role and the key */
    struct config *cfg =
        load_text(HEAD "[roles]\nok = server_user=a pin.jit=off\nbad = server_user=a pin.work_mem=1MB\n", err,
                  sizeof err, path);
    assert_null(cfg);
    snprintf(want, sizeof want, "%s:9: role \"bad\": pin.work_mem: the role's work_mem has a key of its own",
             path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err, want);

    /* Two roles of one server_user: 8 + 7 different names (one shared) is 14, one more is 15. */
    char text[2048];
    snprintf(text, sizeof text, "%s[roles]\n", HEAD);
    strcat(text, "r1 = server_user=x");
    for (int i = 0; i < 8; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), " pin.a%d=1", i);
    strcat(text, "\nr2 = server_user=x pin.a0=2");
    for (int i = 0; i < 6; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), " pin.b%d=1", i);
    strcat(text, "\nr3 = server_user=y pin.c0=1 pin.c1=1\n");
    cfg = load_text(text, err, sizeof err, path);
    if (!cfg)
        fail_msg("%s", err);
    assert_int_equal(cfg->npinned, 16);
    config_free(cfg);
    text[strlen(text) - strlen("\nr3 = server_user=y pin.c0=1 pin.c1=1\n")] = '\0';
    strcat(text, " pin.b6=1\n");
    cfg = load_text(text, err, sizeof err, path);
    assert_null(cfg);
    snprintf(want, sizeof want, "%s:7: the roles with server_user x pin more than 14 different settings", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_lines),    cmocka_unit_test(test_fourteen_pins),
        cmocka_unit_test(test_bad_lines),     cmocka_unit_test(test_config_union),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
