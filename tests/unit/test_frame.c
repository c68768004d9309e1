/* Unit tests for protocol/frame.c: every type byte, length words at and around each limit,
 * every prefix of a header, and that the output is written only for FRAME_OK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/frame.h"
#include "protocol/wire.h"

static const struct frame_limits limits = {
    .control_max = 100,
    .large_max = 100000,
    .password_max = 1000,
};

enum cls { INVALID, CONTROL, PASSWORD, LARGE };

static enum cls fe_expected(int t)
{
    if (t != 0 && strchr("SHXCDEc", t))
        return CONTROL;
    if (t == 'p')
        return PASSWORD;
    if (t != 0 && strchr("QPBdfF", t))
        return LARGE;
    return INVALID;
}

static enum cls be_expected(int t)
{
    if (t != 0 && strchr("Z123nsIKRc", t))
        return CONTROL;
    if (t != 0 && strchr("CWdGHDEVvNAtST", t))
        return LARGE;
    return INVALID;
}

static uint32_t class_max(enum cls c)
{
    return c == CONTROL ? limits.control_max : c == PASSWORD ? limits.password_max : limits.large_max;
}

static void put_header(uint8_t *h, int type, uint32_t len)
{
    h[0] = (uint8_t)type;
    h[1] = (uint8_t)(len >> 24);
    h[2] = (uint8_t)(len >> 16);
    h[3] = (uint8_t)(len >> 8);
    h[4] = (uint8_t)len;
}

typedef enum frame_result (*peek_fn)(const uint8_t *, size_t, const struct frame_limits *, struct frame *);

/* For every type byte: lengths below 4, the minimum, the limit and one past it, the maximum. */
static void check_all_types(peek_fn peek, enum cls (*expected)(int))
{
    for (int t = 0; t < 256; t++) {
        enum cls c = expected(t);
        uint32_t max = class_max(c);
        const struct {
            uint32_t len;
            enum frame_result valid_result;
        } lens[] = {
            {0, FRAME_BAD},  {3, FRAME_BAD},           {4, FRAME_OK},
            {max, FRAME_OK}, {max + 1, FRAME_TOO_BIG}, {UINT32_MAX, FRAME_TOO_BIG},
        };
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            uint8_t h[5];
            put_header(h, t, lens[i].len);
            struct frame f = {.type = '?', .body_len = 77, .total_len = 77};
            enum frame_result res = peek(h, sizeof h, &limits, &f);
            enum frame_result want = c == INVALID ? FRAME_BAD : lens[i].valid_result;
            assert_int_equal(res, want);
            if (res == FRAME_OK) {
                assert_int_equal(f.type, (char)t);
                assert_int_equal(f.body_len, lens[i].len - 4);
                assert_int_equal(f.total_len, (size_t)lens[i].len + 1);
            } else {
                assert_int_equal(f.type, '?');
                assert_int_equal(f.total_len, 77);
            }
        }
    }
}

static void test_fe_types_and_limits(void **state)
{
    check_all_types(frame_peek_fe, fe_expected);
}

static void test_be_types_and_limits(void **state)
{
    check_all_types(frame_peek_be, be_expected);
}

/* A header that is not all there yet: NEED_MORE for a valid type, BAD as soon as the type byte
 * shows garbage. */
static void check_prefixes(peek_fn peek, int good_type, int bad_type)
{
    uint8_t h[5];
    put_header(h, good_type, 4);
    for (size_t avail = 0; avail < sizeof h; avail++) {
        struct frame f;
        assert_int_equal(peek(h, avail, &limits, &f), FRAME_NEED_MORE);
    }
    put_header(h, bad_type, 4);
    struct frame f;
    assert_int_equal(peek(h, 0, &limits, &f), FRAME_NEED_MORE);
    for (size_t avail = 1; avail <= sizeof h; avail++)
        assert_int_equal(peek(h, avail, &limits, &f), FRAME_BAD);
}

static void test_prefixes(void **state)
{
    check_prefixes(frame_peek_fe, FE_QUERY, 'Z');
    check_prefixes(frame_peek_fe, FE_SYNC, 0);
    check_prefixes(frame_peek_be, BE_READY, 'Q');
    check_prefixes(frame_peek_be, BE_DATA_ROW, 'x');
}

/* The header is enough: FRAME_OK while the body is still arriving, and the frame says how much. */
static void test_body_still_arriving(void **state)
{
    uint8_t msg[5 + 6] = {0};
    put_header(msg, FE_QUERY, 4 + 6);
    for (size_t avail = 5; avail <= sizeof msg; avail++) {
        struct frame f;
        assert_int_equal(frame_peek_fe(msg, avail, &limits, &f), FRAME_OK);
        assert_int_equal(f.total_len, sizeof msg);
        assert_int_equal(f.body_len, 6);
    }
}

static void test_startup(void **state)
{
    static const struct {
        uint32_t len;
        size_t avail;
        enum frame_result want;
    } cases[] = {
        {8, 0, FRAME_NEED_MORE},
        {8, 3, FRAME_NEED_MORE},
        {8, 4, FRAME_OK},
        {0, 4, FRAME_BAD},
        {4, 4, FRAME_BAD},
        {7, 4, FRAME_BAD},
        {8, 8, FRAME_OK},
        {STARTUP_MAX_LEN, 4, FRAME_OK},
        {STARTUP_MAX_LEN + 1, 4, FRAME_TOO_BIG},
        {UINT32_MAX, 4, FRAME_TOO_BIG},
        {0x80000000u, 4, FRAME_TOO_BIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t h[8] = {(uint8_t)(cases[i].len >> 24),
                        (uint8_t)(cases[i].len >> 16),
                        (uint8_t)(cases[i].len >> 8),
                        (uint8_t)cases[i].len,
                        0,
                        3,
                        0,
                        0};
        struct frame f = {.type = '?', .body_len = 1, .total_len = 1};
        assert_int_equal(frame_peek_startup(h, cases[i].avail, STARTUP_MAX_LEN, &f), cases[i].want);
        if (cases[i].want == FRAME_OK) {
            assert_int_equal(f.type, 0);
            assert_int_equal(f.body_len, cases[i].len - 4);
            assert_int_equal(f.total_len, cases[i].len);
        } else {
            assert_int_equal(f.type, '?');
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fe_types_and_limits),
        cmocka_unit_test(test_be_types_and_limits),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_body_still_arriving),
        cmocka_unit_test(test_startup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
