/* Interned transaction starts: a chained hash table (over every message the start holds),
 * doubled at load 1. Equality is byte equality of all of them, so a shared start sends exactly
 * what the client's own would. */
#include "proxy/txshare.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/conn.h"

struct shared {
    struct txstart t;
    unsigned refs;
    uint64_t hash;
    struct shared *next;
};

static struct shared **buckets;
static size_t nbuckets, count;

/* Eight bytes a step (every login interns a kilobyte or so); the length goes in too, so that
 * parts cannot trade bytes (same() decides anyway). */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, b, n);
    h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static uint64_t hash_of(const struct txstart *t)
{
    uint64_t h = 1469598103934665603ull;
    h = mix(h, t->set_msg, t->set_len);
    h = mix(h, t->reset_msg, t->reset_len);
    h = mix(h, t->switch_msg, t->switch_len);
    h = mix(h, t->apply_array, slen(t->apply_array));
    h = mix(h, t->apply_param, slen(t->apply_param));
    h = mix(h, t->mac_body, t->mac_body_len);
    return mix(h, t->switch_sql, slen(t->switch_sql));
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (a == NULL) == (b == NULL) && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool same(const struct txstart *a, const struct txstart *b)
{
    return same_bytes(a->set_msg, a->set_len, b->set_msg, b->set_len) &&
           same_bytes(a->reset_msg, a->reset_len, b->reset_msg, b->reset_len) &&
           same_bytes(a->switch_msg, a->switch_len, b->switch_msg, b->switch_len) &&
           same_bytes(a->apply_array, slen(a->apply_array), b->apply_array, slen(b->apply_array)) &&
           same_bytes(a->apply_param, slen(a->apply_param), b->apply_param, slen(b->apply_param)) &&
           same_bytes(a->mac_body, a->mac_body_len, b->mac_body, b->mac_body_len) &&
           same_bytes(a->switch_sql, slen(a->switch_sql), b->switch_sql, slen(b->switch_sql));
}

static bool grow(void)
{
    size_t nnb = nbuckets ? nbuckets * 2 : 64;
    struct shared **nbk = calloc(nnb, sizeof *nbk);
    if (!nbk)
        return false;
    for (size_t i = 0; i < nbuckets; i++) {
        struct shared *e = buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = nbk[e->hash & (nnb - 1)];
            nbk[e->hash & (nnb - 1)] = e;
        }
    }
    free(buckets);
    buckets = nbk;
    nbuckets = nnb;
    return true;
}

const struct txstart *txshare_intern(struct txstart *t)
{
    uint64_t h = hash_of(t);
    if (nbuckets) {
        for (struct shared *e = buckets[h & (nbuckets - 1)]; e; e = e->next) {
            if (e->hash == h && same(&e->t, t)) {
                txstart_destroy(t);
                e->refs++;
                return &e->t;
            }
        }
    }
    struct shared *e = calloc(1, sizeof *e);
    if (!e || (count >= nbuckets && !grow())) {
        free(e);
        txstart_destroy(t);
        return NULL;
    }
    e->t = *t;
    memset(t, 0, sizeof *t);
    e->refs = 1;
    e->hash = h;
    e->next = buckets[h & (nbuckets - 1)];
    buckets[h & (nbuckets - 1)] = e;
    count++;
    return &e->t;
}

const struct txstart *txshare_get(const struct txstart *t)
{
    container_of(t, struct shared, t)->refs++;
    return t;
}

void txshare_put(const struct txstart *t)
{
    if (!t)
        return;
    struct shared *e = container_of(t, struct shared, t);
    if (--e->refs > 0)
        return;
    struct shared **pp = &buckets[e->hash & (nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    count--;
    txstart_destroy(&e->t);
    free(e);
}

size_t txshare_count(void)
{
    return count;
}
