/* Verified-token cache: SHA-256 digest of the token -> the identity jwt_verify returned, so a
 * client reconnecting with the same token skips the signature check. Bounded (LRU eviction) and
 * never used at or past the token's exp, with no leeway. Not thread-safe: one cache per loop.
 * Owner: jwt_cache_new's caller frees with jwt_cache_free. */
#ifndef PGMESH_AUTH_CACHE_H
#define PGMESH_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"

#define JWT_CACHE_DEFAULT_CAPACITY 10000

struct jwt_cache;

/* NULL when capacity is 0 (caching off) or out of memory; every function here accepts a NULL
 * cache and then caches nothing. */
struct jwt_cache *jwt_cache_new(size_t capacity);
void jwt_cache_free(struct jwt_cache *cache);

/* On a hit (digest known and now < exp) copies the identity into *out (claims_json duplicated:
 * the caller owns it, see jwt_identity_clear) and marks the entry most recently used; an entry
 * found at or past its exp is dropped. False on a miss (or out of memory), *out untouched. */
bool jwt_cache_lookup(struct jwt_cache *cache, const char *token, size_t len, int64_t now,
                      struct jwt_identity *out) __attribute__((warn_unused_result));
/* Remembers a verified token (the identity is copied), evicting the least recently used entry
 * when full. Replaces an existing entry for the same token. */
void jwt_cache_insert(struct jwt_cache *cache, const char *token, size_t len, const struct jwt_identity *id);
/* Drops every entry. Call it whenever the keys or any [jwt] setting change (reload): entries
 * were verified under the old ones. */
void jwt_cache_clear(struct jwt_cache *cache);
size_t jwt_cache_count(const struct jwt_cache *cache);
/* Lookups through jwt_verify_cached that found the token, and those that did not, since the cache
 * was made (a clear keeps them). */
void jwt_cache_counts(const struct jwt_cache *cache, uint64_t *hits, uint64_t *misses);

/* jwt_verify through the cache: a hit returns JWT_OK with *out filled (detail empty); a miss
 * runs jwt_verify and caches only a JWT_OK result. Policy and keys must be those the cache's
 * entries were verified under (clear it when they change). Same contract as jwt_verify. */
enum jwt_status jwt_verify_cached(struct jwt_cache *cache, const struct jwt_keys *keys,
                                  const struct jwt_policy *policy, const char *token, size_t len, int64_t now,
                                  struct jwt_identity *out, char *detail, size_t detail_len)
    __attribute__((warn_unused_result));

#endif
