/* Prepared-statement tables. Chained hash tables (FNV-1a, power-of-two buckets, grown at load 1);
 * the server set also keeps an LRU list for eviction. */
#include "proxy/stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "protocol/buf.h"
#include "protocol/fe.h"
#include "protocol/wire.h"

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Doubles a bucket array (or makes the first one) and rehashes its chains. */
static bool grow(void ***buckets, size_t *nb, void *(*next_of)(void *), void (*set_next)(void *, void *),
                 const char *(*key_of)(void *, size_t *))
{
    size_t nnb = *nb ? *nb * 2 : 16;
    void **nbk = calloc(nnb, sizeof *nbk);
    if (!nbk)
        return false;
    for (size_t i = 0; i < *nb; i++) {
        void *e = (*buckets)[i];
        while (e) {
            void *nx = next_of(e);
            size_t klen;
            const char *k = key_of(e, &klen);
            size_t j = hash_bytes(k, klen) & (nnb - 1);
            set_next(e, nbk[j]);
            nbk[j] = e;
            e = nx;
        }
    }
    free(*buckets);
    *buckets = nbk;
    *nb = nnb;
    return true;
}

/* ---- client statements ---- */

struct part {
    const void *p;
    size_t len;
};

/* SHA-256 of the parts one after another into digest (EVP_MAX_MD_SIZE bytes); false when
 * OpenSSL fails. */
static bool sha256_parts(const struct part *parts, size_t n, uint8_t *digest, unsigned *dlen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(md, parts[i].p, parts[i].len);
    ok = ok && EVP_DigestFinal_ex(md, digest, dlen);
    EVP_MD_CTX_free(md);
    return ok;
}

/* Keys the server-side names: without it a tenant who guesses another's statement text could
 * compute its name and run it to confirm the guess (EXECUTE needs no privilege). */
static uint8_t name_key[32];
static bool name_key_set;

bool stmt_name_key_init(const uint8_t *key, size_t len)
{
    if (key) {
        if (len != sizeof name_key)
            return false;
        memcpy(name_key, key, sizeof name_key);
    } else if (RAND_bytes(name_key, sizeof name_key) != 1) {
        return false;
    }
    name_key_set = true;
    return true;
}

/* The server-side name: the prefix and 16 bytes of SHA-256 over the key, then text, types and
 * context with NUL between them so that no two different triples hash the same bytes. The key
 * comes first and only half the digest is shown, so no length extension reaches another name. */
static bool derive_sname(char *sname, const char *query, size_t query_len, const uint8_t *types, uint16_t ntypes,
                         const char *context)
{
    static const uint8_t sep = 0;
    if (!name_key_set && !stmt_name_key_init(NULL, 0))
        return false;
    const char *ctx = context ? context : "";
    const struct part parts[] = {
        {name_key, sizeof name_key}, {query, query_len}, {&sep, 1},
        {types, (size_t)ntypes * 4}, {&sep, 1},          {ctx, strlen(ctx)},
    };
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (!sha256_parts(parts, sizeof parts / sizeof parts[0], digest, &dlen) || dlen < 16)
        return false;
    int k = snprintf(sname, STMT_SNAME_LEN, "%s", STMT_PREFIX);
    for (unsigned i = 0; i < 16; i++)
        k += snprintf(sname + k, STMT_SNAME_LEN - (size_t)k, "%02x", digest[i]);
    return true;
}

/* The Parse message that creates s->sname on a server. */
static bool write_parse(struct cstmt *s, const char *query, size_t query_len, const uint8_t *types,
                        uint16_t ntypes)
{
    struct pq_writer w;
    wr_init_dynamic(&w);
    fe_write_parse_typed(&w, s->sname, (struct span){(const uint8_t *)query, query_len}, ntypes, types);
    if (!wr_ok(&w)) {
        wr_destroy(&w);
        return false;
    }
    s->parse = w.p;
    s->parse_len = w.len;
    return true;
}

struct cstmt *cstmt_new(const char *name, size_t name_len, const char *query, size_t query_len,
                        const uint8_t *types, uint16_t ntypes, const char *context)
{
    struct cstmt *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->refs = 1;
    s->name = malloc(name_len + 1);
    if (!s->name || !derive_sname(s->sname, query, query_len, types, ntypes, context) ||
        !write_parse(s, query, query_len, types, ntypes)) {
        cstmt_unref(s);
        return NULL;
    }
    memcpy(s->name, name, name_len);
    s->name[name_len] = '\0';
    s->name_len = name_len;
    return s;
}

struct cstmt *cstmt_ref(struct cstmt *s)
{
    s->refs++;
    return s;
}

void cstmt_unref(struct cstmt *s)
{
    if (!s || --s->refs > 0)
        return;
    free(s->name);
    free(s->parse);
    free(s);
}

static void *cnext(void *e)
{
    return ((struct cstmt *)e)->next;
}
static void cset_next(void *e, void *n)
{
    ((struct cstmt *)e)->next = n;
}
static const char *ckey(void *e, size_t *len)
{
    *len = ((struct cstmt *)e)->name_len;
    return ((struct cstmt *)e)->name;
}

struct cstmt *cstmt_find(const struct cstmt_table *t, const char *name, size_t len)
{
    if (!t->nb)
        return NULL;
    for (struct cstmt *s = t->b[hash_bytes(name, len) & (t->nb - 1)]; s; s = s->next)
        if (s->name_len == len && memcmp(s->name, name, len) == 0)
            return s;
    return NULL;
}

bool cstmt_insert(struct cstmt_table *t, struct cstmt *s)
{
    if (t->count >= t->nb && !grow((void ***)&t->b, &t->nb, cnext, cset_next, ckey))
        return false;
    size_t j = hash_bytes(s->name, s->name_len) & (t->nb - 1);
    s->next = t->b[j];
    t->b[j] = s;
    t->count++;
    t->bytes += s->parse_len;
    return true;
}

struct cstmt *cstmt_remove(struct cstmt_table *t, const char *name, size_t len)
{
    if (!t->nb)
        return NULL;
    for (struct cstmt **pp = &t->b[hash_bytes(name, len) & (t->nb - 1)]; *pp; pp = &(*pp)->next) {
        struct cstmt *s = *pp;
        if (s->name_len == len && memcmp(s->name, name, len) == 0) {
            *pp = s->next;
            s->next = NULL;
            t->count--;
            t->bytes -= s->parse_len;
            return s;
        }
    }
    return NULL;
}

void cstmt_table_clear(struct cstmt_table *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        struct cstmt *s = t->b[i];
        while (s) {
            struct cstmt *nx = s->next;
            s->next = NULL;
            cstmt_unref(s);
            s = nx;
        }
    }
    free(t->b);
    memset(t, 0, sizeof *t);
}

/* ---- server statements ---- */

static void *snext(void *e)
{
    return ((struct sstmt *)e)->next;
}
static void sset_next(void *e, void *n)
{
    ((struct sstmt *)e)->next = n;
}
static const char *skey(void *e, size_t *len)
{
    *len = strlen(((struct sstmt *)e)->name);
    return ((struct sstmt *)e)->name;
}

void sstmt_init(struct sstmt_set *set)
{
    memset(set, 0, sizeof *set);
    TAILQ_INIT(&set->lru);
}

static struct sstmt **sfind(struct sstmt_set *set, const char *name)
{
    if (!set->nb)
        return NULL;
    for (struct sstmt **pp = &set->b[hash_bytes(name, strlen(name)) & (set->nb - 1)]; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            return pp;
    return NULL;
}

bool sstmt_use(struct sstmt_set *set, const char *name, uint64_t stamp)
{
    struct sstmt **pp = sfind(set, name);
    if (!pp)
        return false;
    (*pp)->stamp = stamp;
    TAILQ_REMOVE(&set->lru, *pp, lru);
    TAILQ_INSERT_TAIL(&set->lru, *pp, lru);
    return true;
}

bool sstmt_add(struct sstmt_set *set, const char *name, uint64_t stamp)
{
    if (sstmt_use(set, name, stamp))
        return true;
    if (strlen(name) >= STMT_SNAME_LEN)
        return false;
    if (set->count >= set->nb && !grow((void ***)&set->b, &set->nb, snext, sset_next, skey))
        return false;
    struct sstmt *e = calloc(1, sizeof *e);
    if (!e)
        return false;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->stamp = stamp;
    size_t j = hash_bytes(name, strlen(name)) & (set->nb - 1);
    e->next = set->b[j];
    set->b[j] = e;
    TAILQ_INSERT_TAIL(&set->lru, e, lru);
    set->count++;
    return true;
}

void sstmt_remove(struct sstmt_set *set, const char *name)
{
    struct sstmt **pp = sfind(set, name);
    if (!pp)
        return;
    struct sstmt *e = *pp;
    *pp = e->next;
    TAILQ_REMOVE(&set->lru, e, lru);
    set->count--;
    free(e);
}

const struct sstmt *sstmt_oldest(const struct sstmt_set *set)
{
    return TAILQ_FIRST(&set->lru);
}

void sstmt_clear(struct sstmt_set *set)
{
    struct sstmt *e;
    while ((e = TAILQ_FIRST(&set->lru))) {
        TAILQ_REMOVE(&set->lru, e, lru);
        free(e);
    }
    free(set->b);
    sstmt_init(set);
}
