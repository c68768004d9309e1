/* Unit tests for protocol/buf.c: reader bounds and sticky failure, span comparison, writer
 * back-patching, fixed-buffer overflow (never a byte past cap) and dynamic growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/buf.h"

static void test_span_compare(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        const char *word;
        bool eq, ieq;
    } cases[] = {
        {"user", 4, "user", true, true},
        {"USER", 4, "user", false, true},
        {"user", 3, "user", false, false},
        {"users", 5, "user", false, false},
        {"", 0, "", true, true},
        {"a\0b", 3, "a", false, false},
        {"\xc3\x84", 2, "\xc3\xa4", false, false}, /* only ASCII folds */
        {"Ab_1", 4, "aB_1", false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct span s = {(const uint8_t *)cases[i].s, cases[i].len};
        assert_int_equal(span_eq(s, cases[i].word), cases[i].eq);
        assert_int_equal(span_ieq(s, cases[i].word), cases[i].ieq);
    }
}

static void test_reader_integers(void **state)
{
    static const uint8_t bytes[] = {0x7f, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xfe};
    struct pq_reader r;
    rd_init(&r, bytes, sizeof bytes);
    assert_int_equal(rd_u8(&r), 0x7f);
    assert_int_equal(rd_u16(&r), 0x1234);
    assert_int_equal(rd_u32(&r), 0xdeadbeefu);
    assert_int_equal(rd_i32(&r), -2);
    assert_int_equal(rd_remaining(&r), 0);
    assert_true(rd_finish(&r));
    /* one more byte: bad, zero, and it stays bad */
    assert_int_equal(rd_u8(&r), 0);
    assert_true(r.bad);
    assert_false(rd_finish(&r));
    assert_int_equal(rd_remaining(&r), 0);
}

static void test_reader_overrun_each_width(void **state)
{
    static const uint8_t bytes[] = {1, 2, 3};
    for (size_t avail = 0; avail <= sizeof bytes; avail++) {
        struct pq_reader r;
        rd_init(&r, bytes, avail);
        (void)rd_u32(&r);
        assert_true(r.bad);
        assert_int_equal(rd_u32(&r), 0);
        rd_init(&r, bytes, avail);
        uint16_t v = rd_u16(&r);
        assert_int_equal(r.bad, avail < 2);
        if (avail < 2)
            assert_int_equal(v, 0);
    }
    /* a failed wide read consumes nothing and later narrow reads still fail */
    struct pq_reader r;
    rd_init(&r, bytes, 3);
    (void)rd_u32(&r);
    assert_int_equal(rd_u8(&r), 0);
    assert_int_equal(r.pos, 0);
}

static void test_reader_cstr(void **state)
{
    static const uint8_t msg[] = {'a', 'b', 0, 0, 'c'};
    struct pq_reader r;
    rd_init(&r, msg, sizeof msg);
    struct span s = rd_cstr(&r);
    assert_int_equal(s.len, 2);
    assert_memory_equal(s.p, "ab", 3); /* p[len] is the NUL */
    s = rd_cstr(&r);
    assert_int_equal(s.len, 0);
    assert_false(r.bad);
    s = rd_cstr(&r); /* "c" has no NUL */
    assert_true(r.bad);
    assert_int_equal(s.len, 0);
    assert_non_null(s.p);
    assert_int_equal(s.p[0], 0);
    assert_false(rd_finish(&r));
}

static void test_reader_bytes(void **state)
{
    static const uint8_t msg[] = {1, 2, 3, 4};
    static const struct {
        size_t first, second;
        bool bad;
    } cases[] = {
        {0, 4, false}, {4, 0, false},       {2, 2, false},       {3, 2, true},
        {5, 0, true},  {SIZE_MAX, 0, true}, {1, SIZE_MAX, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pq_reader r;
        rd_init(&r, msg, sizeof msg);
        struct span a = rd_bytes(&r, cases[i].first);
        struct span b = rd_bytes(&r, cases[i].second);
        assert_int_equal(r.bad, cases[i].bad);
        assert_int_equal(rd_finish(&r), !cases[i].bad);
        if (!cases[i].bad) {
            assert_int_equal(a.len + b.len, 4);
            assert_ptr_equal(b.p, msg + a.len);
        }
    }
}

static void test_reader_empty_and_null(void **state)
{
    struct pq_reader r;
    rd_init(&r, NULL, 10);
    assert_int_equal(rd_remaining(&r), 0);
    assert_true(rd_finish(&r));
    (void)rd_cstr(&r);
    assert_true(r.bad);
}

static void test_writer_roundtrip(void **state)
{
    uint8_t buf[64];
    struct pq_writer w;
    wr_init_fixed(&w, buf, sizeof buf);
    wr_begin(&w, 'Q');
    wr_u8(&w, 9);
    wr_u16(&w, 0xbeef);
    wr_u32(&w, 0x01020304);
    wr_i32(&w, -7);
    wr_cstr(&w, "hi");
    wr_cstrn(&w, "abcdef", 3);
    wr_bytes(&w, "\0\1", 2);
    wr_end(&w);
    assert_true(wr_ok(&w));
    assert_int_equal(w.len, 1 + 4 + 1 + 2 + 4 + 4 + 3 + 4 + 2);

    struct pq_reader r;
    rd_init(&r, buf, w.len);
    assert_int_equal(rd_u8(&r), 'Q');
    assert_int_equal(rd_u32(&r), w.len - 1);
    assert_int_equal(rd_u8(&r), 9);
    assert_int_equal(rd_u16(&r), 0xbeef);
    assert_int_equal(rd_u32(&r), 0x01020304);
    assert_int_equal(rd_i32(&r), -7);
    assert_true(span_eq(rd_cstr(&r), "hi"));
    assert_true(span_eq(rd_cstr(&r), "abc"));
    struct span b = rd_bytes(&r, 2);
    assert_memory_equal(b.p, "\0\1", 2);
    assert_true(rd_finish(&r));
}

/* A head whose body goes on elsewhere: the length counts what follows it, and a declared rest
 * that the length word cannot hold fails the writer rather than wrapping. */
static void test_writer_end_head(void **state)
{
    uint8_t buf[16];
    struct pq_writer w;
    wr_init_fixed(&w, buf, sizeof buf);
    wr_begin(&w, 'B');
    wr_cstr(&w, "p");
    wr_end_head(&w, 10);
    assert_true(wr_ok(&w));
    assert_int_equal(w.len, 7);
    assert_memory_equal(buf, "B\0\0\0\x10p\0", 7); /* 4 + 2 + 10 */

    wr_reset(&w);
    wr_begin(&w, 'B');
    wr_end_head(&w, 0); /* the same as wr_end */
    assert_true(wr_ok(&w));
    assert_memory_equal(buf, "B\0\0\0\4", 5);

    wr_reset(&w);
    wr_begin(&w, 'B');
    wr_end_head(&w, UINT32_MAX - 4); /* exactly the largest length word */
    assert_true(wr_ok(&w));
    assert_memory_equal(buf, "B\xff\xff\xff\xff", 5);

    static const size_t too_long[] = {UINT32_MAX - 3, UINT32_MAX, SIZE_MAX};
    for (size_t i = 0; i < sizeof too_long / sizeof too_long[0]; i++) {
        wr_reset(&w);
        wr_begin(&w, 'B');
        wr_end_head(&w, too_long[i]);
        assert_false(wr_ok(&w));
    }

    wr_reset(&w);
    wr_end_head(&w, 1); /* no open message */
    assert_false(wr_ok(&w));
}

static void test_writer_untyped_and_several(void **state)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    wr_begin(&w, 0);
    wr_u32(&w, 1234);
    wr_end(&w);
    wr_begin(&w, 'S');
    wr_end(&w);
    assert_true(wr_ok(&w));
    static const uint8_t want[] = {0, 0, 0, 8, 0, 0, 4, 210, 'S', 0, 0, 0, 4};
    assert_int_equal(w.len, sizeof want);
    assert_memory_equal(w.p, want, sizeof want);
    wr_destroy(&w);
    wr_destroy(NULL);
}

/* Every capacity short of what a message needs fails, and nothing lands past cap. */
static void test_writer_fixed_overflow(void **state)
{
    const size_t need = 1 + 4 + 6 + 4;
    for (size_t cap = 0; cap <= need; cap++) {
        uint8_t buf[32];
        memset(buf, 0xAA, sizeof buf);
        struct pq_writer w;
        wr_init_fixed(&w, buf, cap);
        wr_begin(&w, 'X');
        wr_cstr(&w, "hello");
        wr_u32(&w, 5);
        wr_end(&w);
        assert_int_equal(wr_ok(&w), cap == need);
        assert_true(w.len <= cap);
        for (size_t i = cap; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0xAA);
        /* sticky: a small write that would fit still does nothing */
        size_t len = w.len;
        wr_u8(&w, 1);
        if (cap < need)
            assert_int_equal(w.len, len);
    }
}

static void test_writer_misuse(void **state)
{
    uint8_t buf[64];
    struct pq_writer w;
    static const char embedded[] = {'a', 0, 'b'};
    enum { NESTED, END_ONLY, EMBEDDED_NUL, NULL_CSTR, N_MISUSE };
    for (int c = NESTED; c < N_MISUSE; c++) {
        wr_init_fixed(&w, buf, sizeof buf);
        switch (c) {
        case NESTED:
            wr_begin(&w, 'Q');
            wr_begin(&w, 'Q');
            break;
        case END_ONLY:
            wr_end(&w);
            break;
        case EMBEDDED_NUL:
            wr_begin(&w, 'Q');
            wr_cstrn(&w, embedded, sizeof embedded);
            wr_end(&w);
            break;
        case NULL_CSTR:
            wr_begin(&w, 'Q');
            wr_cstr(&w, NULL);
            wr_end(&w);
            break;
        }
        assert_false(wr_ok(&w));
        wr_reset(&w);
        assert_true(wr_ok(&w));
        assert_int_equal(w.len, 0);
        wr_begin(&w, 'S'); /* usable again after a reset */
        wr_end(&w);
        assert_true(wr_ok(&w));
        assert_int_equal(w.len, 5);
    }
}

static void test_writer_dynamic_growth(void **state)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    static char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    wr_begin(&w, 'd');
    for (int i = 0; i < 300; i++)
        wr_bytes(&w, chunk, sizeof chunk);
    wr_end(&w);
    assert_true(wr_ok(&w));
    assert_int_equal(w.len, 5 + 300000);
    struct pq_reader r;
    rd_init(&r, w.p, w.len);
    assert_int_equal(rd_u8(&r), 'd');
    assert_int_equal(rd_u32(&r), 300004);
    (void)rd_bytes(&r, 300000);
    assert_true(rd_finish(&r));
    wr_reset(&w);
    assert_int_equal(w.len, 0);
    wr_destroy(&w);
    /* destroyed dynamic writer starts over empty and still works */
    wr_u8(&w, 1);
    assert_true(wr_ok(&w));
    wr_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_compare),
        cmocka_unit_test(test_reader_integers),
        cmocka_unit_test(test_reader_overrun_each_width),
        cmocka_unit_test(test_reader_cstr),
        cmocka_unit_test(test_reader_bytes),
        cmocka_unit_test(test_reader_empty_and_null),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_end_head),
        cmocka_unit_test(test_writer_untyped_and_several),
        cmocka_unit_test(test_writer_fixed_overflow),
        cmocka_unit_test(test_writer_misuse),
        cmocka_unit_test(test_writer_dynamic_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
