/* Unit tests for proxy/txstart.c: the three Queries a transaction start is made of (set, reset,
 * switch), decoded with the protocol readers and compared as exact SQL; claims_json and role
 * limits in and out; values that try to end their literal; the managed-settings table as the one
 * source of what is set; a role's pinned settings in both forms (SETs, and pgmesh.apply's array,
 * its Bind parameter and its MAC), and the server's refusal of one told as the [roles] setting to
 * fix; failure leaving the struct untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "policy/managed.h"
#include "policy/sqllex.h"
#include "protocol/buf.h"
#include "protocol/fe.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "proxy/config.h"
#include "proxy/txstart.h"

static const struct frame_limits limits = {.control_max = 1024, .large_max = 1u << 20, .password_max = 1024};

/* The SQL text of a built Query message, checked to be exactly one whole Query. */
static void query_sql(const uint8_t *msg, size_t len, char *out, size_t cap)
{
    struct frame f;
    assert_non_null(msg);
    assert_int_equal(frame_peek_fe(msg, len, &limits, &f), FRAME_OK);
    assert_int_equal(f.type, FE_QUERY);
    assert_int_equal(f.total_len, len);
    struct span sql;
    assert_true(fe_read_query(msg + MSG_HEADER_LEN, f.body_len, &sql));
    assert_true(sql.len < cap);
    memcpy(out, sql.p, sql.len);
    out[sql.len] = '\0';
}

static void assert_txstart(const struct txstart *t, const char *set, const char *reset, const char *sw)
{
    char sql[4096];
    query_sql(t->set_msg, t->set_len, sql, sizeof sql);
    assert_string_equal(sql, set);
    query_sql(t->reset_msg, t->reset_len, sql, sizeof sql);
    assert_string_equal(sql, reset);
    query_sql(t->switch_msg, t->switch_len, sql, sizeof sql);
    assert_string_equal(sql, sw);
}

static void identity(struct jwt_identity *id, const char *tenant, const char *role, const char *claims_json)
{
    memset(id, 0, sizeof *id);
    snprintf(id->tenant, sizeof id->tenant, "%s", tenant);
    snprintf(id->role, sizeof id->role, "%s", role);
    if (claims_json) {
        id->claims_json = strdup(claims_json);
        assert_non_null(id->claims_json);
    }
}

/* Each statement of sql must be SET <name> = <one string constant>; fills names in order. A value
 * that escaped its literal would show up as more tokens or more statements. */
static size_t set_names(const char *sql, char names[][64], size_t max)
{
    struct sqllex lx;
    sqllex_init(&lx, sql, strlen(sql));
    size_t n = 0;
    for (;;) {
        struct sqltok t[16];
        size_t k = 0;
        for (t[k] = sqllex_next(&lx); t[k].kind != SQLTOK_SEMI && t[k].kind != SQLTOK_EOF; t[k] = sqllex_next(&lx))
            assert_true(++k < 16);
        /* SET, the name (a dotted one lexes in pieces), '=', the value. */
        assert_true(k >= 4);
        assert_true(sqltok_is(&t[0], "set"));
        assert_true(t[k - 2].kind == SQLTOK_OP && t[k - 2].len == 1 && t[k - 2].text[0] == '=');
        assert_int_equal(t[k - 1].kind, SQLTOK_STRING);
        for (size_t j = 1; j < k - 2; j++)
            assert_true(t[j].kind == SQLTOK_WORD || (t[j].kind == SQLTOK_OP && t[j].text[0] == '.'));
        size_t len = (size_t)(t[k - 3].text + t[k - 3].len - t[1].text);
        assert_true(n < max && len < 64);
        memcpy(names[n], t[1].text, len);
        names[n][len] = '\0';
        n++;
        if (t[k].kind == SQLTOK_EOF)
            return n;
    }
}

#define CLAIMS_SET "SET request.jwt.claim.tenant = 'DE'; SET request.jwt.claim.role = 'regional_analyst'"
#define CLAIMS_RESET "RESET request.jwt.claim.tenant; RESET request.jwt.claim.role"

static void test_for_client(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *tenant, *role, *claims_json;
        int64_t statement_timeout_ms, work_mem_kb;
        const char *application_name;
        const char *set, *reset, *sw;
    } cases[] = {
        {"claims and both limits", "DE", "regional_analyst", NULL, 30000, 131072, "psql",
         CLAIMS_SET "; SET statement_timeout = '30000'; SET work_mem = '131072kB'", CLAIMS_RESET,
         CLAIMS_SET "; SET statement_timeout = '30000'; SET work_mem = '131072kB'; SET application_name = 'psql'"},
        {"no limits", "DE", "regional_analyst", NULL, 0, 0, "psql", CLAIMS_SET, CLAIMS_RESET,
         CLAIMS_SET "; SET application_name = 'psql'"},
        {"work_mem only", "DE", "regional_analyst", NULL, 0, 64, "", CLAIMS_SET "; SET work_mem = '64kB'",
         CLAIMS_RESET, CLAIMS_SET "; SET work_mem = '64kB'; SET application_name = ''"},
        {"statement_timeout only", "DE", "regional_analyst", NULL, 250, 0, "app",
         CLAIMS_SET "; SET statement_timeout = '250'", CLAIMS_RESET,
         CLAIMS_SET "; SET statement_timeout = '250'; SET application_name = 'app'"},
        {"claims_json", "DE", "regional_analyst", "{\"tenant\":\"DE\",\"role\":\"regional_analyst\"}", 30000, 0,
         "psql",
         CLAIMS_SET "; SET request.jwt.claims = '{\"tenant\":\"DE\",\"role\":\"regional_analyst\"}'; "
                    "SET statement_timeout = '30000'",
         CLAIMS_RESET "; RESET request.jwt.claims",
         CLAIMS_SET "; SET request.jwt.claims = '{\"tenant\":\"DE\",\"role\":\"regional_analyst\"}'; "
                    "SET statement_timeout = '30000'; SET application_name = 'psql'"},
        {"quotes and backslashes", "O'Brien", "a\\b", "{\"x\":\"it's \\\"q\\\"\"}", 0, 0, "x'; RESET ALL; --",
         "SET request.jwt.claim.tenant = 'O''Brien'; SET request.jwt.claim.role = E'a\\\\b'; "
         "SET request.jwt.claims = E'{\"x\":\"it''s \\\\\"q\\\\\"\"}'",
         CLAIMS_RESET "; RESET request.jwt.claims",
         "SET request.jwt.claim.tenant = 'O''Brien'; SET request.jwt.claim.role = E'a\\\\b'; "
         "SET request.jwt.claims = E'{\"x\":\"it''s \\\\\"q\\\\\"\"}'; "
         "SET application_name = 'x''; RESET ALL; --'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case: %s\n", cases[i].what);
        struct jwt_identity id;
        identity(&id, cases[i].tenant, cases[i].role, cases[i].claims_json);
        struct role_config role = {.name = "regional_analyst",
                                   .server_user = "analyst",
                                   .statement_timeout_ms = cases[i].statement_timeout_ms,
                                   .work_mem_kb = cases[i].work_mem_kb};
        struct txstart t = {0};
        assert_true(txstart_for_client(&t, &id, &role, cases[i].application_name));
        assert_txstart(&t, cases[i].set, cases[i].reset, cases[i].sw);
        /* Whatever the values, each statement stays one SET of one literal. */
        char sql[4096], names[TXSTART_SETTINGS_MAX][64];
        query_sql(t.set_msg, t.set_len, sql, sizeof sql);
        size_t n = set_names(sql, names, TXSTART_SETTINGS_MAX);
        query_sql(t.switch_msg, t.switch_len, sql, sizeof sql);
        assert_int_equal(set_names(sql, names, TXSTART_SETTINGS_MAX), n + 1);
        assert_string_equal(names[n], "application_name");
        txstart_destroy(&t);
        assert_null(t.set_msg);
        assert_int_equal(t.set_len, 0);
        jwt_identity_clear(&id);
    }
}

static void test_managed_table(void **state)
{
    (void)state;
    struct jwt_identity id;
    identity(&id, "DE", "regional_analyst", "{\"tenant\":\"DE\"}");
    struct role_config role = {.name = "r", .server_user = "u", .statement_timeout_ms = 1000, .work_mem_kb = 1024};
    struct txstart t = {0};
    assert_true(txstart_for_client(&t, &id, &role, "app"));
    char sql[4096], names[TXSTART_SETTINGS_MAX][64];
    query_sql(t.set_msg, t.set_len, sql, sizeof sql);
    size_t n = set_names(sql, names, TXSTART_SETTINGS_MAX);

    /* Every setting the table gives a source is set exactly once, in table order, claims first;
     * nothing else is set, so no protected name (nor anything under a protected prefix that is
     * not itself a managed claim) is. */
    size_t want = 0, claims = 0;
    for (size_t i = 0; i < managed_settings_count; i++) {
        const struct managed_setting *m = &managed_settings[i];
        if (m->source == MANAGED_PROTECTED)
            continue;
        assert_false(m->prefix);
        assert_true(want < n);
        if (managed_is_claim(m->source)) {
            assert_int_equal(want, claims); /* no limit before it */
            claims++;
        }
        assert_string_equal(names[want], m->name);
        want++;
    }
    assert_int_equal(n, want);
    for (size_t i = 0; i < managed_settings_count; i++) {
        const struct managed_setting *m = &managed_settings[i];
        if (m->source != MANAGED_PROTECTED)
            continue;
        for (size_t k = 0; k < n; k++) {
            if (m->prefix) {
                bool under = strncmp(names[k], m->name, strlen(m->name)) == 0;
                bool managed = false;
                for (size_t j = 0; j < managed_settings_count; j++)
                    managed |= managed_settings[j].source != MANAGED_PROTECTED &&
                               strcmp(managed_settings[j].name, names[k]) == 0;
                assert_true(!under || managed);
            } else {
                assert_string_not_equal(names[k], m->name);
            }
        }
    }

    /* The switch Query: the same, then application_name. */
    query_sql(t.switch_msg, t.switch_len, sql, sizeof sql);
    assert_int_equal(set_names(sql, names, TXSTART_SETTINGS_MAX), n + 1);
    assert_string_equal(names[n], "application_name");
    txstart_destroy(&t);
    jwt_identity_clear(&id);
}

/* A role's pins come after its limits, in [roles] order, in every form the start takes; their
 * values are quoted like any other. */
static void test_pins(void **state)
{
    (void)state;
    struct jwt_identity id;
    identity(&id, "DE", "regional_analyst", NULL);
    struct role_config role = {
        .name = "regional_analyst",
        .server_user = "marketing_domain_role",
        .statement_timeout_ms = 30000,
        .work_mem_kb = 131072,
        .pins = {{"hash_mem_multiplier", "1"}, {"max_parallel_workers_per_gather", "0"}, {"x.y", "it's \\ \"q\""}},
        .npins = 3};
    struct txstart t = {0};
    assert_true(txstart_for_client(&t, &id, &role, "psql"));
#define LIMITS "; SET statement_timeout = '30000'; SET work_mem = '131072kB'"
#define PINS                                                                                                      \
    "; SET hash_mem_multiplier = '1'; SET max_parallel_workers_per_gather = '0'; SET x.y = E'it''s \\\\ \"q\"'"
    assert_txstart(&t, CLAIMS_SET LIMITS PINS, CLAIMS_RESET,
                   CLAIMS_SET LIMITS PINS "; SET application_name = 'psql'");
    char sql[4096], names[TXSTART_SETTINGS_MAX][64];
    query_sql(t.set_msg, t.set_len, sql, sizeof sql);
    assert_int_equal(set_names(sql, names, TXSTART_SETTINGS_MAX), 7);
    assert_string_equal(names[6], "x.y");

    /* With the extension: the same pairs in the array literal, the Bind parameter and the MAC. */
    assert_string_equal(t.apply_array, "ARRAY['request.jwt.claim.tenant', 'DE', 'request.jwt.claim.role', "
                                       "'regional_analyst', 'statement_timeout', '30000', 'work_mem', '131072kB', "
                                       "'hash_mem_multiplier', '1', 'max_parallel_workers_per_gather', '0', "
                                       "'x.y', E'it''s \\\\ \"q\"']::pg_catalog.text[]");
    assert_string_equal(t.apply_param,
                        "{\"request.jwt.claim.tenant\",\"DE\",\"request.jwt.claim.role\","
                        "\"regional_analyst\",\"statement_timeout\",\"30000\",\"work_mem\","
                        "\"131072kB\",\"hash_mem_multiplier\",\"1\","
                        "\"max_parallel_workers_per_gather\",\"0\",\"x.y\",\"it's \\\\ \\\"q\\\"\"}");
    const char mac_tail[] = "19:hash_mem_multiplier1:131:max_parallel_workers_per_gather1:03:x.y10:it's \\ \"q\"";
    assert_true(t.mac_body_len > sizeof mac_tail - 1);
    assert_memory_equal(t.mac_body + t.mac_body_len - (sizeof mac_tail - 1), mac_tail, sizeof mac_tail - 1);

    /* And in the Query pgmesh sends. */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    assert_non_null(mac);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    static const unsigned char key[32] = {1};
    assert_int_equal(EVP_MAC_init(ctx, key, sizeof key, params), 1);
    struct pq_writer w;
    wr_init_dynamic(&w);
    assert_true(txstart_write_apply(&t, &w, "00112233445566778899aabbccddeeff", 7, ctx, false));
    query_sql(w.p, w.len, sql, sizeof sql);
    assert_true(strncmp(sql, "SELECT pgmesh.apply(7, ", 23) == 0);
    assert_non_null(strstr(sql, t.apply_array));
    wr_destroy(&w);
    EVP_MAC_CTX_free(ctx);
    txstart_destroy(&t);
    jwt_identity_clear(&id);
#undef LIMITS
#undef PINS
}

/* The server's refusal of a transaction start, told as which [roles] setting to fix. */
static void test_explain_failure(void **state)
{
    (void)state;
    const struct role_config role = {.name = "regional_analyst",
                                     .server_user = "marketing_domain_role",
                                     .pins = {{"hash_mem_multiplier", "banana"}, {"temp_file_limit", "1GB"}},
                                     .npins = 2};
    struct txstart_failure f;
    assert_true(txstart_explain_failure(
        &role, "22023", "invalid value for parameter \"hash_mem_multiplier\": \"banana\"", NULL, &f));
    assert_string_equal(f.message, "the server refused pin.hash_mem_multiplier of role \"regional_analyst\"");
    assert_string_equal(f.detail,
                        "Role \"regional_analyst\" has pin.hash_mem_multiplier=banana in pgmesh's [roles]; the "
                        "server refused it: 22023 invalid value for parameter \"hash_mem_multiplier\": "
                        "\"banana\"");
    assert_string_equal(f.hint,
                        "Fix pin.hash_mem_multiplier of role \"regional_analyst\" and reload pgmesh (SIGHUP).");

    /* The server's hint goes along; the extension's messages name the setting the same way. */
    assert_true(txstart_explain_failure(&role, "22023", "pgmesh: invalid value for parameter \"TEMP_FILE_LIMIT\"",
                                        "Valid units are kB, MB, GB and TB.", &f));
    assert_string_equal(f.hint,
                        "Fix pin.temp_file_limit of role \"regional_analyst\" and reload pgmesh (SIGHUP). Valid "
                        "units are kB, MB, GB and TB.");

    /* The extension refuses a name its pgmesh.pinned_settings does not list. */
    assert_true(txstart_explain_failure(
        &role, "42501", "pgmesh: \"temp_file_limit\" is not a setting pgmesh.apply() may set",
        "pgmesh.apply() sets the request.jwt claims, statement_timeout, work_mem and "
        "pgmesh.pinned_settings.",
        &f));
    assert_string_equal(f.message, "the server's pgmesh.pinned_settings does not list temp_file_limit");
    assert_non_null(strstr(f.hint, "Add temp_file_limit to pgmesh.pinned_settings on the server "
                                   "(scripts/server-setup.sh --pinned NAME,...), or remove pin.temp_file_limit"));

    /* Without the extension, a superuser-only setting. */
    assert_true(txstart_explain_failure(&role, "42501", "permission denied to set parameter \"temp_file_limit\"",
                                        NULL, &f));
    assert_string_equal(f.message, "the server refused pin.temp_file_limit of role \"regional_analyst\"");
    assert_non_null(strstr(f.hint, "GRANT SET ON PARAMETER temp_file_limit TO marketing_domain_role"));

    /* Anything that names no pin of the role is not explained here; f is untouched. */
    memset(&f, 'x', sizeof f);
    f.message[0] = '\0';
    assert_false(txstart_explain_failure(&role, "42501", "pgmesh: claims message is not authentic", NULL, &f));
    assert_false(
        txstart_explain_failure(&role, "22023", "invalid value for parameter \"work_mem\": \"x\"", NULL, &f));
    assert_false(txstart_explain_failure(&role, "22023", "invalid value for parameter \"hash_mem\"", NULL, &f));
    assert_false(txstart_explain_failure(&role, "22023", "unterminated \"hash_mem_multiplier", NULL, &f));
    assert_false(
        txstart_explain_failure(NULL, "22023", "invalid value for parameter \"temp_file_limit\"", NULL, &f));
    assert_string_equal(f.message, "");
}

static void test_build(void **state)
{
    (void)state;
    /* Claims are the first nclaims settings; switch_only ones are left out of the set Query. */
    const struct txstart_setting s[] = {
        {"request.jwt.claim.tenant", "DE", false},
        {"statement_timeout", "5000", false},
        {"application_name", "a\\'b", true},
        {"work_mem", "1MB", false},
    };
    struct txstart t = {0};
    assert_true(txstart_build(&t, s, 4, 1));
    assert_txstart(&t, "SET request.jwt.claim.tenant = 'DE'; SET statement_timeout = '5000'; SET work_mem = '1MB'",
                   "RESET request.jwt.claim.tenant",
                   "SET request.jwt.claim.tenant = 'DE'; SET statement_timeout = '5000'; "
                   "SET application_name = E'a\\\\''b'; SET work_mem = '1MB'");
    txstart_destroy(&t);
    txstart_destroy(&t); /* a destroyed one is empty and may be destroyed again */

    /* A switch_only first setting: the set Query starts without a separator. */
    const struct txstart_setting first_switch[] = {
        {"application_name", "x", true},
        {"request.jwt.claim.role", "r", false},
    };
    assert_true(txstart_build(&t, first_switch, 2, 2));
    assert_txstart(&t, "SET request.jwt.claim.role = 'r'", "RESET application_name; RESET request.jwt.claim.role",
                   "SET application_name = 'x'; SET request.jwt.claim.role = 'r'");
    txstart_destroy(&t);
}

static void test_build_refused(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        struct txstart_setting s[2];
        size_t n, nclaims;
    } cases[] = {
        {"invalid UTF-8", {{"request.jwt.claim.tenant", "\xc3(", false}, {"work_mem", "1", false}}, 2, 1},
        {"invalid UTF-8 later",
         {{"request.jwt.claim.tenant", "DE", false}, {"application_name", "\x80", true}},
         2,
         1},
        {"no claims to reset", {{"work_mem", "1", false}, {"application_name", "a", true}}, 2, 0},
        {"nothing per transaction", {{"application_name", "a", true}, {"application_name", "b", true}}, 2, 1},
        {"nothing at all", {{NULL, NULL, false}}, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case: %s\n", cases[i].what);
        uint8_t sentinel;
        struct txstart t = {.set_msg = &sentinel, .set_len = 7, .reset_msg = &sentinel, .switch_msg = &sentinel};
        assert_false(txstart_build(&t, cases[i].s, cases[i].n, cases[i].nclaims));
        assert_ptr_equal(t.set_msg, &sentinel); /* written only on success */
        assert_int_equal(t.set_len, 7);
        assert_ptr_equal(t.reset_msg, &sentinel);
        assert_ptr_equal(t.switch_msg, &sentinel);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_for_client), cmocka_unit_test(test_managed_table),
        cmocka_unit_test(test_pins),       cmocka_unit_test(test_explain_failure),
        cmocka_unit_test(test_build),      cmocka_unit_test(test_build_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
