/* Prepared-statement bookkeeping for transaction pooling: each client's named statements (the
 * names it chose, mapped to server-side names derived from the statement itself) and, per server
 * connection, which server-side statements exist there, least recently used first. Pure data
 * structures: no I/O. */
#ifndef PGMESH_PROXY_STMT_H
#define PGMESH_PROXY_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/* "pgmesh_" and 32 hex digits: under NAMEDATALEN, and never a name pgmesh passes on from a client. */
#define STMT_PREFIX "pgmesh_"
#define STMT_SNAME_LEN 40
/* Under the prefix but never a derived name: what a client's Close of its statement becomes. */
#define STMT_NONE "pgmesh_none"

/* The key of the server-side names: 32 bytes given (tests), or random when key is NULL (pgmesh,
 * once at start; otherwise the first name draws it). False if the length is wrong or no random
 * bytes are to be had. */
bool stmt_name_key_init(const uint8_t *key, size_t len);

/* One client statement. Reference-counted: the client's table holds one reference, and so does
 * every in-flight request whose reply may need it after the client has closed it. */
struct cstmt {
    char *name; /* the client's name, NUL-terminated */
    size_t name_len;
    char sname[STMT_SNAME_LEN]; /* the server-side name */
    uint8_t *parse;             /* a whole Parse message for sname, ready to send */
    size_t parse_len;
    unsigned refs;
    bool dirty;         /* the text may leave session state: each execution marks the server */
    struct cstmt *next; /* hash chain */
};

/* Builds a statement from a client's Parse: name, query text and parameter type OIDs (network
 * order, 4 bytes each); context is hashed with them (the client's search_path: the same text
 * can mean another table under another path). One reference. NULL when memory runs out. */
struct cstmt *cstmt_new(const char *name, size_t name_len, const char *query, size_t query_len,
                        const uint8_t *types, uint16_t ntypes, const char *context);
struct cstmt *cstmt_ref(struct cstmt *s);
void cstmt_unref(struct cstmt *s);

struct cstmt_table {
    struct cstmt **b;
    size_t nb, count;
    size_t bytes; /* the statements' Parse messages together */
};

struct cstmt *cstmt_find(const struct cstmt_table *t, const char *name, size_t len);
/* Takes over the caller's reference. The name must not be in the table. */
bool cstmt_insert(struct cstmt_table *t, struct cstmt *s) __attribute__((warn_unused_result));
/* Unlinks the statement and hands the table's reference to the caller; NULL when absent. */
struct cstmt *cstmt_remove(struct cstmt_table *t, const char *name, size_t len);
void cstmt_table_clear(struct cstmt_table *t);

/* Server-side statements of one server connection. */
struct sstmt {
    char name[STMT_SNAME_LEN];
    uint64_t stamp;         /* the caller's clock at the last use */
    struct sstmt *next;     /* hash chain */
    TAILQ_ENTRY(sstmt) lru; /* head: least recently used */
};

struct sstmt_set {
    struct sstmt **b;
    size_t nb, count;
    TAILQ_HEAD(, sstmt) lru;
};

void sstmt_init(struct sstmt_set *set);
/* Whether name exists there; a hit becomes the most recently used, at stamp. */
bool sstmt_use(struct sstmt_set *set, const char *name, uint64_t stamp);
bool sstmt_add(struct sstmt_set *set, const char *name, uint64_t stamp) __attribute__((warn_unused_result));
void sstmt_remove(struct sstmt_set *set, const char *name);
/* The least recently used entry, or NULL when empty. */
const struct sstmt *sstmt_oldest(const struct sstmt_set *set);
void sstmt_clear(struct sstmt_set *set);

#endif
