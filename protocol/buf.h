/* Bounded reader and writer for protocol messages. The reader walks borrowed bytes with a sticky
 * `bad` flag, so parsers read fields straight down and check once (rd_finish); the writer
 * back-patches message lengths, so nobody computes a length or offset by hand. No I/O, no globals. */
#ifndef PGMESH_PROTOCOL_BUF_H
#define PGMESH_PROTOCOL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view into someone else's bytes; valid as long as they are. For C strings read off the wire,
 * p points at the first character, len excludes the terminating NUL, and p[len] == '\0'. */
struct span {
    const uint8_t *p;
    size_t len;
};

bool span_eq(struct span s, const char *cstr);  /* exact, case-sensitive */
bool span_ieq(struct span s, const char *cstr); /* ASCII case-insensitive */

struct pq_reader {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
};

void rd_init(struct pq_reader *r, const void *p, size_t len);
uint8_t rd_u8(struct pq_reader *r);
uint16_t rd_u16(struct pq_reader *r); /* network byte order */
uint32_t rd_u32(struct pq_reader *r);
int32_t rd_i32(struct pq_reader *r);
struct span rd_cstr(struct pq_reader *r); /* up to NUL; bad (empty span) if none */
struct span rd_bytes(struct pq_reader *r, size_t n);
size_t rd_remaining(const struct pq_reader *r);
bool rd_finish(const struct pq_reader *r); /* !bad && every byte consumed */

/* Writer over a fixed buffer (wr_init_fixed) or a heap buffer that grows (wr_init_dynamic, freed
 * by wr_destroy). Overflow or allocation failure sets `failed`; later calls do nothing. */
struct pq_writer {
    uint8_t *p;
    size_t len, cap;
    size_t msg_start; /* offset of the open message's length word; SIZE_MAX when none */
    bool failed;
    bool dynamic;
};

void wr_init_fixed(struct pq_writer *w, void *buf, size_t cap);
void wr_init_dynamic(struct pq_writer *w);
void wr_destroy(struct pq_writer *w);
void wr_reset(struct pq_writer *w); /* len = 0, failed cleared, buffer kept */
/* Opens a message: type byte (none when type == 0, for startup-class packets) and a length
 * placeholder. Messages do not nest. */
void wr_begin(struct pq_writer *w, char type);
void wr_u8(struct pq_writer *w, uint8_t v);
void wr_u16(struct pq_writer *w, uint16_t v);
void wr_u32(struct pq_writer *w, uint32_t v);
void wr_i32(struct pq_writer *w, int32_t v);
void wr_cstr(struct pq_writer *w, const char *s);            /* with its NUL */
void wr_cstrn(struct pq_writer *w, const char *s, size_t n); /* n bytes then a NUL */
void wr_bytes(struct pq_writer *w, const void *p, size_t n);
void wr_end(struct pq_writer *w); /* back-patches the open message's length */
/* Ends a message whose body goes on past what this writer holds (a head written here, the rest
 * streamed from elsewhere): the length also counts the rest_len bytes the caller sends next. */
void wr_end_head(struct pq_writer *w, size_t rest_len);
static inline bool wr_ok(const struct pq_writer *w)
{
    return !w->failed;
}

#endif
