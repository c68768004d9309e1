/* Unit tests for proxy/stmt.c: server-side names derived from text, types and search_path; the
 * Parse message built for them; client tables (insert, find, remove, growth, references); server
 * sets (LRU order, stamps, removal, clear). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/fe.h"
#include "protocol/wire.h"
#include "proxy/stmt.h"

static struct cstmt *mk(const char *name, const char *sql, const char *context)
{
    static const uint8_t int4[4] = {0, 0, 0, 23};
    struct cstmt *s = cstmt_new(name, strlen(name), sql, strlen(sql), int4, 1, context);
    assert_non_null(s);
    return s;
}

static void test_names(void **state)
{
    (void)state;
    struct cstmt *a = mk("S_1", "SELECT $1", NULL), *b = mk("S_2", "SELECT $1", NULL);
    struct cstmt *c = mk("S_1", "SELECT $1", "'other', public"), *d = mk("S_1", "SELECT $1 ", NULL);
    assert_int_equal(strlen(a->sname), STMT_SNAME_LEN - 1);
    assert_memory_equal(a->sname, STMT_PREFIX, strlen(STMT_PREFIX));
    assert_string_equal(a->sname, b->sname);     /* same statement, other client names: shared */
    assert_string_not_equal(a->sname, c->sname); /* another search_path: another statement */
    assert_string_not_equal(a->sname, d->sname);
    /* Known answers: SHA-256 of the key, text, NUL, type OIDs, NUL, search_path; the first 16
     * bytes in hex (key 32 bytes of 0x01..0x20, see main). */
    assert_string_equal(a->sname, STMT_PREFIX "d32fbea70d29f6e0475b1c89ab1a8b2d");
    assert_string_equal(c->sname, STMT_PREFIX "4fd3914603ab413b5cb79c837fbaf51b");
    /* Another key (another pgmesh process), other names: no one computes them from a text. */
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(0x41 + i);
    assert_true(stmt_name_key_init(key, sizeof key));
    struct cstmt *e = mk("S_1", "SELECT $1", NULL);
    assert_string_not_equal(a->sname, e->sname);
    cstmt_unref(e);
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i + 1);
    assert_true(stmt_name_key_init(key, sizeof key));
    assert_false(stmt_name_key_init(key, 16));
    /* The Parse message: type, length, the server name, the text, the one parameter type. */
    assert_int_equal(a->parse[0], FE_PARSE);
    struct fe_parse p;
    assert_true(fe_read_parse(a->parse + MSG_HEADER_LEN, a->parse_len - MSG_HEADER_LEN, &p));
    assert_int_equal(p.name.len, strlen(a->sname));
    assert_memory_equal(p.name.p, a->sname, p.name.len);
    assert_int_equal(p.query.len, 9);
    assert_int_equal(p.nparams, 1);
    cstmt_unref(a);
    cstmt_unref(b);
    cstmt_unref(c);
    cstmt_unref(d);
}

static void test_client_table(void **state)
{
    (void)state;
    struct cstmt_table t = {0};
    char name[16];
    for (int i = 0; i < 100; i++) { /* grows several times */
        snprintf(name, sizeof name, "S_%d", i);
        assert_true(cstmt_insert(&t, mk(name, name, NULL)));
    }
    assert_int_equal(t.count, 100);
    size_t bytes = t.bytes;
    assert_true(bytes > 100 * (MSG_HEADER_LEN + STMT_SNAME_LEN));
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "S_%d", i);
        struct cstmt *s = cstmt_find(&t, name, strlen(name));
        assert_non_null(s);
        assert_string_equal(s->name, name);
    }
    assert_null(cstmt_find(&t, "S_1", 2)); /* lengths count: "S_" is not "S_1" */
    struct cstmt *s = cstmt_remove(&t, "S_7", 3);
    assert_non_null(s);
    assert_null(cstmt_find(&t, "S_7", 3));
    assert_null(cstmt_remove(&t, "S_7", 3));
    size_t removed = s->parse_len;
    cstmt_ref(s); /* an in-flight request keeps it after the table lets go */
    cstmt_unref(s);
    assert_string_equal(s->name, "S_7");
    cstmt_unref(s);
    assert_int_equal(t.count, 99);
    assert_int_equal(t.bytes, bytes - removed);
    cstmt_table_clear(&t);
    assert_int_equal(t.count, 0);
    assert_int_equal(t.bytes, 0);
    assert_null(cstmt_find(&t, "S_1", 3));
}

static void test_server_set(void **state)
{
    (void)state;
    struct sstmt_set set;
    sstmt_init(&set);
    assert_null(sstmt_oldest(&set));
    char name[STMT_SNAME_LEN];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "pgmesh_%d", i);
        assert_true(sstmt_add(&set, name, (uint64_t)i));
    }
    assert_int_equal(set.count, 40);
    assert_string_equal(sstmt_oldest(&set)->name, "pgmesh_0");
    assert_true(sstmt_use(&set, "pgmesh_0", 99)); /* used: now the newest */
    assert_string_equal(sstmt_oldest(&set)->name, "pgmesh_1");
    assert_int_equal(sstmt_oldest(&set)->stamp, 1);
    assert_false(sstmt_use(&set, "pgmesh_x", 1));
    assert_true(sstmt_add(&set, "pgmesh_1", 100)); /* already there: counts as a use */
    assert_int_equal(set.count, 40);
    assert_string_equal(sstmt_oldest(&set)->name, "pgmesh_2");
    sstmt_remove(&set, "pgmesh_2");
    sstmt_remove(&set, "pgmesh_2");
    assert_int_equal(set.count, 39);
    assert_string_equal(sstmt_oldest(&set)->name, "pgmesh_3");
    char too_long[STMT_SNAME_LEN + 8];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    assert_false(sstmt_add(&set, too_long, 0));
    sstmt_clear(&set);
    assert_int_equal(set.count, 0);
    assert_null(sstmt_oldest(&set));
    assert_true(sstmt_add(&set, "pgmesh_again", 0));
    sstmt_clear(&set);
}

int main(void)
{
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i + 1);
    if (!stmt_name_key_init(key, sizeof key))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_client_table),
        cmocka_unit_test(test_server_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
