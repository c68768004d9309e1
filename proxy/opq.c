/* The op queue (opq.h): a growable ring of expected replies. No I/O. */
#include "proxy/opq.h"

#include <stdlib.h>
#include <string.h>

/* cap is a power of two (8, doubled), so positions wrap with a mask rather than a division. */
bool opq_push(struct opq *q, const struct op *op)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct op *n = malloc(cap * sizeof *n);
        if (!n) {
            cstmt_unref(op->stmt);
            free(op->text);
            return false;
        }
        for (size_t i = 0; i < q->len; i++)
            n[i] = q->ops[(q->head + i) & (q->cap - 1)];
        free(q->ops);
        q->ops = n;
        q->cap = cap;
        q->head = 0;
    }
    q->ops[(q->head + q->len) & (q->cap - 1)] = *op;
    q->len++;
    return true;
}

struct op *opq_head(struct opq *q)
{
    return q->len ? &q->ops[q->head] : NULL;
}

struct op *opq_at(struct opq *q, size_t i)
{
    return i < q->len ? &q->ops[(q->head + i) & (q->cap - 1)] : NULL;
}

void opq_pop(struct opq *q)
{
    if (q->len) {
        cstmt_unref(q->ops[q->head].stmt);
        free(q->ops[q->head].text);
        q->head = (q->head + 1) & (q->cap - 1);
        q->len--;
    }
}

void opq_destroy(struct opq *q)
{
    while (q->len)
        opq_pop(q);
    free(q->ops);
    memset(q, 0, sizeof *q);
}
