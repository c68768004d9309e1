/* Unit tests for proxy/opq.c: FIFO order through growth with the ring wrapped (the copy on growth
 * must unroll it), indexing in and out of range, pop and destroy on empty queues, and what entries
 * own (client statement references, their text), released on pop and on destroy: the sanitizer
 * build reports any that is lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/opq.h"
#include "proxy/stmt.h"

/* Entries are told apart by a counter kept in their text, which the queue owns once pushed. */
static struct op numbered(unsigned i)
{
    char digits[16];
    snprintf(digits, sizeof digits, "%u", i);
    struct op op = {.kind = OP_MSG, .expect = EXPECT_EXECUTE, .text = strdup(digits)};
    assert_non_null(op.text);
    return op;
}

static bool push_numbered(struct opq *q, unsigned i)
{
    struct op op = numbered(i);
    return opq_push(q, &op);
}

static unsigned number(const struct op *op)
{
    return (unsigned)strtoul(op->text, NULL, 10);
}

/* The queue holds exactly first, first + 1, ..., first + len - 1, head first. */
static void assert_holds(struct opq *q, unsigned first, size_t len)
{
    assert_int_equal(q->len, len);
    for (size_t i = 0; i < len; i++) {
        assert_non_null(opq_at(q, i));
        assert_int_equal(number(opq_at(q, i)), first + i);
    }
    assert_null(opq_at(q, len));
    assert_null(opq_at(q, len + 1000));
    if (len)
        assert_ptr_equal(opq_head(q), opq_at(q, 0));
    else
        assert_null(opq_head(q));
}

static void test_empty(void **state)
{
    (void)state;
    struct opq q = {0}; /* all-zero is a valid empty queue */
    assert_null(opq_head(&q));
    assert_null(opq_at(&q, 0));
    opq_pop(&q); /* harmless */
    assert_int_equal(q.len, 0);
    opq_destroy(&q);
    assert_null(q.ops);
    assert_true(push_numbered(&q, 1));
    opq_pop(&q);
    opq_pop(&q); /* empty again, storage kept */
    assert_holds(&q, 0, 0);
    opq_destroy(&q);
    opq_destroy(&q);
}

static void test_order(void **state)
{
    (void)state;
    /* Each step pops some and pushes some; growth happens at several head positions, so the
     * ring is wrapped when it grows. */
    static const struct {
        size_t pop, push;
    } steps[] = {
        {0, 5}, {3, 5}, {0, 3}, {2, 1}, {0, 4}, {7, 20}, {1, 0}, {0, 40}, {50, 3}, {5, 100}, {0, 0},
    };
    struct opq q = {0};
    unsigned first = 0, next = 0;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        for (size_t i = 0; i < steps[s].pop; i++) {
            assert_int_equal(number(opq_head(&q)), first);
            opq_pop(&q);
            first++;
        }
        for (size_t i = 0; i < steps[s].push; i++)
            assert_true(push_numbered(&q, next++));
        assert_holds(&q, first, next - first);
        assert_true(q.cap >= q.len);
    }
    /* Wrapped without growing: fill to capacity from a head in the middle. */
    for (; q.len; first++)
        opq_pop(&q);
    size_t cap = q.cap;
    for (; q.head != cap / 2; first++) {
        assert_true(push_numbered(&q, next++));
        opq_pop(&q);
    }
    for (size_t i = 0; i < cap; i++)
        assert_true(push_numbered(&q, next++));
    assert_int_equal(q.cap, cap);
    assert_holds(&q, first, cap);
    /* One more grows it from the wrapped state. */
    assert_true(push_numbered(&q, next++));
    assert_true(q.cap > cap);
    assert_holds(&q, first, cap + 1);
    /* Entries are stored by value: a change through opq_at is what opq_head sees. */
    opq_at(&q, 0)->known_idle = true;
    assert_true(opq_head(&q)->known_idle);
    opq_destroy(&q);
    assert_holds(&q, 0, 0);
    assert_null(q.ops);
    assert_int_equal(q.cap, 0);
    /* Usable again after destroy. */
    assert_true(push_numbered(&q, 7));
    assert_holds(&q, 7, 1);
    opq_destroy(&q);
}

static struct cstmt *mk(const char *name)
{
    static const uint8_t no_types[1];
    struct cstmt *s = cstmt_new(name, strlen(name), "SELECT 1", 8, no_types, 0, NULL);
    assert_non_null(s);
    return s;
}

static void test_statement_refs(void **state)
{
    (void)state;
    struct cstmt *a = mk("a"), *b = mk("b");
    struct opq q = {0};
    /* Enough entries to grow twice: growth moves entries, not references. */
    for (int i = 0; i < 20; i++) {
        struct op op = numbered((unsigned)i);
        op.stmt = cstmt_ref(i % 2 ? b : a);
        assert_true(opq_push(&q, &op));
    }
    assert_true(push_numbered(&q, 20)); /* no statement: pop must accept NULL */
    assert_int_equal(a->refs, 11);
    assert_int_equal(b->refs, 11);
    opq_pop(&q);
    assert_int_equal(a->refs, 10);
    assert_int_equal(b->refs, 11);
    opq_pop(&q);
    assert_int_equal(b->refs, 10);
    /* The client closes b; the queue's references keep it alive. */
    cstmt_unref(b);
    assert_int_equal(b->refs, 9);
    assert_string_equal(opq_head(&q)->stmt->name, "a");
    assert_string_equal(opq_at(&q, 1)->stmt->name, "b");
    opq_destroy(&q);
    /* Destroy released the rest: only the test's own reference to a is left. ASan reports b
     * if a reference was lost. */
    assert_int_equal(a->refs, 1);
    cstmt_unref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_statement_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
