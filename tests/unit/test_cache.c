/* Unit tests for auth/cache.c with a fake clock: hit, miss, the exp boundary (never at or past
 * exp), LRU eviction order, clear, claims_json ownership, and jwt_verify_cached caching only
 * JWT_OK results. Tokens for the wrapper are HS256, minted with libjwt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <cmocka.h>

#include "auth/cache.h"
#include "auth/jwt.h"
#include "auth/keys.h"

static struct jwt_identity ident(const char *tenant, int64_t exp)
{
    struct jwt_identity id;
    memset(&id, 0, sizeof(id));
    snprintf(id.tenant, sizeof(id.tenant), "%s", tenant);
    snprintf(id.role, sizeof(id.role), "r");
    id.exp = exp;
    return id;
}

static void put(struct jwt_cache *c, const char *token, const char *tenant, int64_t exp)
{
    struct jwt_identity id = ident(tenant, exp);
    jwt_cache_insert(c, token, strlen(token), &id);
}

/* The tenant cached for token at now, or NULL on a miss (static buffer). */
static const char *get(struct jwt_cache *c, const char *token, int64_t now)
{
    static char tenant[JWT_CLAIM_MAX + 1];
    struct jwt_identity id;
    if (!jwt_cache_lookup(c, token, strlen(token), now, &id))
        return NULL;
    snprintf(tenant, sizeof(tenant), "%s", id.tenant);
    jwt_identity_clear(&id);
    return tenant;
}

static void test_hit_and_miss(void **state)
{
    struct jwt_cache *c = jwt_cache_new(4);
    assert_non_null(c);
    assert_null(get(c, "a.b.c", 100));
    put(c, "a.b.c", "DE", 1000);
    assert_string_equal(get(c, "a.b.c", 100), "DE");
    assert_null(get(c, "a.b.d", 100));
    assert_null(get(c, "a.b.", 100));
    /* Same token again replaces, does not duplicate. */
    put(c, "a.b.c", "FR", 1000);
    assert_int_equal(jwt_cache_count(c), 1);
    assert_string_equal(get(c, "a.b.c", 100), "FR");
    jwt_cache_free(c);
}

static void test_expiry_boundary(void **state)
{
    struct jwt_cache *c = jwt_cache_new(4);
    put(c, "t", "DE", 1000);
    assert_string_equal(get(c, "t", 998), "DE");
    assert_string_equal(get(c, "t", 999), "DE");
    assert_null(get(c, "t", 1000));          /* at exp: no leeway on the cache side */
    assert_int_equal(jwt_cache_count(c), 0); /* and the entry is gone */
    assert_null(get(c, "t", 999));
    put(c, "u", "DE", 1000);
    assert_null(get(c, "u", 5000));
    jwt_cache_free(c);
}

static void test_lru_eviction(void **state)
{
    struct jwt_cache *c = jwt_cache_new(3);
    put(c, "t1", "A", 1000);
    put(c, "t2", "B", 1000);
    put(c, "t3", "C", 1000);
    assert_string_equal(get(c, "t1", 0), "A"); /* t1 now most recent; t2 oldest */
    put(c, "t4", "D", 1000);
    assert_int_equal(jwt_cache_count(c), 3);
    assert_null(get(c, "t2", 0));
    assert_string_equal(get(c, "t3", 0), "C"); /* order now t1, t4, t3 (oldest first) */
    put(c, "t5", "E", 1000);
    assert_null(get(c, "t1", 0));
    assert_string_equal(get(c, "t4", 0), "D");
    assert_string_equal(get(c, "t3", 0), "C");
    assert_string_equal(get(c, "t5", 0), "E");
    jwt_cache_free(c);

    /* Capacity 1, and many more tokens than buckets. */
    c = jwt_cache_new(1);
    put(c, "x", "X", 1000);
    put(c, "y", "Y", 1000);
    assert_null(get(c, "x", 0));
    assert_string_equal(get(c, "y", 0), "Y");
    jwt_cache_free(c);
    c = jwt_cache_new(100);
    char tok[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "tok%d", i);
        put(c, tok, "T", 1000);
    }
    assert_int_equal(jwt_cache_count(c), 100);
    assert_null(get(c, "tok899", 0));
    assert_string_equal(get(c, "tok900", 0), "T");
    assert_string_equal(get(c, "tok999", 0), "T");
    jwt_cache_free(c);
}

static void test_clear_and_null(void **state)
{
    struct jwt_cache *c = jwt_cache_new(8);
    put(c, "t1", "A", 1000);
    put(c, "t2", "B", 1000);
    jwt_cache_clear(c);
    assert_int_equal(jwt_cache_count(c), 0);
    assert_null(get(c, "t1", 0));
    put(c, "t1", "A", 1000);
    assert_string_equal(get(c, "t1", 0), "A");
    jwt_cache_free(c);
    /* Capacity 0 is "no cache": every call accepts NULL. */
    assert_null(jwt_cache_new(0));
    put(NULL, "t", "A", 1000);
    assert_null(get(NULL, "t", 0));
    jwt_cache_clear(NULL);
    assert_int_equal(jwt_cache_count(NULL), 0);
    jwt_cache_free(NULL);
}

static void test_claims_json_owned(void **state)
{
    struct jwt_cache *c = jwt_cache_new(2);
    struct jwt_identity id = ident("DE", 1000);
    id.claims_json = strdup("{\"tenant\":\"DE\"}");
    jwt_cache_insert(c, "t", 1, &id);
    jwt_identity_clear(&id); /* the cache holds its own copy */
    assert_null(id.claims_json);
    struct jwt_identity a, b;
    assert_true(jwt_cache_lookup(c, "t", 1, 0, &a));
    assert_true(jwt_cache_lookup(c, "t", 1, 0, &b));
    assert_string_equal(a.claims_json, "{\"tenant\":\"DE\"}");
    assert_ptr_not_equal(a.claims_json, b.claims_json);
    jwt_identity_clear(&a);
    jwt_identity_clear(&b);
    jwt_cache_free(c);
}

static const char secret[] = "0123456789abcdef0123456789abcdef";

static char *mint(const char *claims)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)), 0);
    char *tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    return tok;
}

static void test_verify_cached(void **state)
{
    struct jwt_keys keys = {.type = KEY_HMAC, .material = (unsigned char *)secret, .material_len = strlen(secret)};
    struct jwt_policy policy = {.alg_mask = JWT_ALLOW_HS256, .leeway_s = 30, .claims_json = true};
    struct jwt_cache *c = jwt_cache_new(8);
    struct jwt_identity id;
    char detail[256];
    char *good = mint("{\"exp\":1000,\"tenant\":\"DE\",\"role\":\"r\"}");
    char *bad = mint("{\"exp\":1000,\"tenant\":\"D E\",\"role\":\"r\"}");

    assert_int_equal(jwt_verify_cached(c, &keys, &policy, good, strlen(good), 900, &id, detail, sizeof(detail)),
                     JWT_OK);
    assert_non_null(strstr(id.claims_json, "\"tenant\":\"DE\""));
    jwt_identity_clear(&id);
    assert_int_equal(jwt_cache_count(c), 1);
    assert_int_equal(jwt_verify_cached(c, &keys, &policy, bad, strlen(bad), 900, &id, detail, sizeof(detail)),
                     JWT_BAD_CLAIM);
    assert_int_equal(jwt_cache_count(c), 1); /* failures are not cached */
    /* A hit works even with keys that could not verify it: proof it came from the cache. */
    struct jwt_keys other = keys;
    other.material = (unsigned char *)"ffffffffffffffffffffffffffffffff";
    assert_int_equal(jwt_verify_cached(c, &other, &policy, good, strlen(good), 999, &id, detail, sizeof(detail)),
                     JWT_OK);
    assert_string_equal(id.tenant, "DE");
    assert_string_equal(detail, "");
    jwt_identity_clear(&id);
    /* At exp the cache misses; jwt_verify then applies its leeway (30 s) and succeeds. */
    assert_int_equal(jwt_verify_cached(c, &other, &policy, good, strlen(good), 1000, &id, detail, sizeof(detail)),
                     JWT_BAD_SIGNATURE);
    assert_int_equal(jwt_verify_cached(c, &keys, &policy, good, strlen(good), 1000, &id, detail, sizeof(detail)),
                     JWT_OK);
    jwt_identity_clear(&id);
    /* After a key reload the proxy clears the cache. */
    jwt_cache_clear(c);
    assert_int_equal(jwt_verify_cached(c, &other, &policy, good, strlen(good), 900, &id, detail, sizeof(detail)),
                     JWT_BAD_SIGNATURE);
    /* One hit (the other keys at 999); the first good, the bad, the two at exp, the one after the
     * clear were misses. */
    uint64_t hits, misses;
    jwt_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 5);
    /* Without a cache it is jwt_verify. */
    assert_int_equal(jwt_verify_cached(NULL, &keys, &policy, good, strlen(good), 900, &id, detail, sizeof(detail)),
                     JWT_OK);
    jwt_identity_clear(&id);
    free(good);
    free(bad);
    jwt_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),      cmocka_unit_test(test_expiry_boundary),
        cmocka_unit_test(test_lru_eviction),      cmocka_unit_test(test_clear_and_null),
        cmocka_unit_test(test_claims_json_owned), cmocka_unit_test(test_verify_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
