/* Verified-token cache: a chained hash table over SHA-256 digests plus a doubly linked LRU list.
 * Entries are allocated on insert and freed on eviction, expiry or clear; the count never passes
 * the capacity. The token itself is never stored, only its digest. */
#include "auth/cache.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define DIGEST_LEN 32

struct cache_entry {
    unsigned char digest[DIGEST_LEN];
    struct jwt_identity id;
    struct cache_entry *chain;         /* next in the bucket */
    struct cache_entry *newer, *older; /* LRU list */
};

struct jwt_cache {
    size_t capacity, count, nbuckets; /* nbuckets a power of two */
    uint64_t hits, misses;
    struct cache_entry **buckets;
    struct cache_entry *newest, *oldest;
};

struct jwt_cache *jwt_cache_new(size_t capacity)
{
    if (capacity == 0)
        return NULL;
    struct jwt_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->capacity = capacity;
    c->nbuckets = 16;
    while (c->nbuckets < capacity && c->nbuckets < ((size_t)1 << 24))
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

static bool digest_of(const char *token, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) == 1 && n == DIGEST_LEN;
}

/* The digest is uniformly distributed, so its first bytes are a good hash. */
static size_t bucket_of(const struct jwt_cache *c, const unsigned char *digest)
{
    size_t h;
    memcpy(&h, digest, sizeof(h));
    return h & (c->nbuckets - 1);
}

static struct cache_entry **find_slot(struct jwt_cache *c, const unsigned char *digest)
{
    struct cache_entry **slot = &c->buckets[bucket_of(c, digest)];
    while (*slot != NULL && memcmp((*slot)->digest, digest, DIGEST_LEN) != 0)
        slot = &(*slot)->chain;
    return slot;
}

static void lru_unlink(struct jwt_cache *c, struct cache_entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(struct jwt_cache *c, struct cache_entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest != NULL)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
}

static void free_entry(struct cache_entry *e)
{
    jwt_identity_clear(&e->id);
    OPENSSL_cleanse(e, sizeof(*e));
    free(e);
}

/* Removes the entry *slot points at. */
static void remove_at(struct jwt_cache *c, struct cache_entry **slot)
{
    struct cache_entry *e = *slot;
    *slot = e->chain;
    lru_unlink(c, e);
    c->count--;
    free_entry(e);
}

bool jwt_cache_lookup(struct jwt_cache *cache, const char *token, size_t len, int64_t now,
                      struct jwt_identity *out)
{
    unsigned char digest[DIGEST_LEN];
    if (cache == NULL || !digest_of(token, len, digest))
        return false;
    struct cache_entry **slot = find_slot(cache, digest);
    if (*slot == NULL)
        return false;
    if (now >= (*slot)->id.exp) {
        remove_at(cache, slot);
        return false;
    }
    struct cache_entry *e = *slot;
    if (!jwt_identity_copy(out, &e->id))
        return false;
    lru_unlink(cache, e);
    lru_push_newest(cache, e);
    return true;
}

void jwt_cache_insert(struct jwt_cache *cache, const char *token, size_t len, const struct jwt_identity *id)
{
    unsigned char digest[DIGEST_LEN];
    if (cache == NULL || !digest_of(token, len, digest))
        return;
    struct cache_entry **slot = find_slot(cache, digest);
    if (*slot != NULL)
        remove_at(cache, slot);
    struct cache_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    if (!jwt_identity_copy(&e->id, id)) {
        free(e);
        return;
    }
    if (cache->count == cache->capacity) {
        struct cache_entry *old = cache->oldest;
        remove_at(cache, find_slot(cache, old->digest));
    }
    memcpy(e->digest, digest, DIGEST_LEN);
    slot = &cache->buckets[bucket_of(cache, digest)];
    e->chain = *slot;
    *slot = e;
    lru_push_newest(cache, e);
    cache->count++;
}

void jwt_cache_clear(struct jwt_cache *cache)
{
    if (cache == NULL)
        return;
    while (cache->oldest != NULL)
        remove_at(cache, find_slot(cache, cache->oldest->digest));
}

void jwt_cache_counts(const struct jwt_cache *cache, uint64_t *hits, uint64_t *misses)
{
    *hits = cache ? cache->hits : 0;
    *misses = cache ? cache->misses : 0;
}

size_t jwt_cache_count(const struct jwt_cache *cache)
{
    return cache != NULL ? cache->count : 0;
}

void jwt_cache_free(struct jwt_cache *cache)
{
    if (cache == NULL)
        return;
    jwt_cache_clear(cache);
    free(cache->buckets);
    free(cache);
}

enum jwt_status jwt_verify_cached(struct jwt_cache *cache, const struct jwt_keys *keys,
                                  const struct jwt_policy *policy, const char *token, size_t len, int64_t now,
                                  struct jwt_identity *out, char *detail, size_t detail_len)
{
    /* Oversized tokens are refused by jwt_verify without being hashed. */
    if (len <= JWT_MAX_TOKEN_LEN && jwt_cache_lookup(cache, token, len, now, out)) {
        if (detail != NULL && detail_len > 0)
            detail[0] = '\0';
        cache->hits++;
        return JWT_OK;
    }
    if (cache)
        cache->misses++;
    enum jwt_status st = jwt_verify(keys, policy, token, len, now, out, detail, detail_len);
    if (st == JWT_OK)
        jwt_cache_insert(cache, token, len, out);
    return st;
}
