/* A chained hash table of reference-counted strings; each entry holds its text after its header,
 * so the name a client points at lives exactly as long as its last holder. */
#include "proxy/names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/conn.h"

struct name {
    struct name *next;
    uint64_t hash;
    unsigned refs;
    char text[];
};

const char names_empty[] = "";

static struct name **buckets;
static size_t nbuckets, count;

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static bool grow(void)
{
    size_t nnb = nbuckets ? nbuckets * 2 : 64;
    struct name **nbk = calloc(nnb, sizeof *nbk);
    if (!nbk)
        return false;
    for (size_t i = 0; i < nbuckets; i++) {
        struct name *e = buckets[i], *next;
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

const char *names_get(const char *s)
{
    if (!s[0])
        return names_empty;
    uint64_t h = hash_of(s);
    if (nbuckets) {
        for (struct name *e = buckets[h & (nbuckets - 1)]; e; e = e->next) {
            if (e->hash == h && strcmp(e->text, s) == 0) {
                e->refs++;
                return e->text;
            }
        }
    }
    size_t len = strlen(s);
    struct name *e = malloc(sizeof *e + len + 1);
    if (!e || (count >= nbuckets && !grow())) {
        free(e);
        return NULL;
    }
    memcpy(e->text, s, len + 1);
    e->refs = 1;
    e->hash = h;
    e->next = buckets[h & (nbuckets - 1)];
    buckets[h & (nbuckets - 1)] = e;
    count++;
    return e->text;
}

void names_put(const char *name)
{
    if (!name || name == names_empty)
        return;
    struct name *e = container_of(name, struct name, text);
    if (--e->refs > 0)
        return;
    struct name **pp = &buckets[e->hash & (nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    free(e);
    count--;
}

size_t names_count(void)
{
    return count;
}
