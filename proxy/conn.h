/* What client and server connections share: the socket, libev watchers, input and output
 * buffers, the transport (plain, the TLS object libpq negotiated for a server link, or a client's
 * own TLS session), batched flushing and deferred release. Owner: the embedding struct client /
 * struct server; conn_destroy frees the buffers and an owned SSL object. */
#ifndef PGMESH_PROXY_CONN_H
#define PGMESH_PROXY_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* clang-format 14 reads "(ptr) - offsetof" as a cast of a negation and glues them together. */
// clang-format off
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
// clang-format on

/* Byte queue: data[start..end) is pending. Grows on demand; compacts before growing. */
struct iobuf {
    uint8_t *data;
    size_t start, end, cap;
};

static inline size_t iobuf_len(const struct iobuf *b)
{
    return b->end - b->start;
}
static inline uint8_t *iobuf_head(const struct iobuf *b)
{
    return b->data + b->start;
}
/* Room for n more bytes at the end: compacts, or moves to a buffer twice as big. */
bool iobuf_grow(struct iobuf *b, size_t n) __attribute__((warn_unused_result));
/* Inline: every message relayed passes here, and the room is nearly always there already. */
__attribute__((warn_unused_result)) static inline bool iobuf_reserve(struct iobuf *b, size_t n)
{
    return b->cap - b->end >= n || iobuf_grow(b, n);
}
__attribute__((warn_unused_result)) static inline bool iobuf_append(struct iobuf *b, const void *p, size_t n)
{
    if (n == 0)
        return true;
    if (!iobuf_reserve(b, n))
        return false;
    memcpy(b->data + b->end, p, n);
    b->end += n;
    return true;
}
/* Consuming the last byte releases the buffer (iobuf_release): pointers into it are stale then. */
void iobuf_consume(struct iobuf *b, size_t n);
/* Gives an empty buffer's memory back (to the free list of standard-sized ones); no-op otherwise. */
void iobuf_release(struct iobuf *b);
void iobuf_free(struct iobuf *b);
/* Frees the free list (at exit, so that leak checkers see nothing). */
void iobuf_spares_trim(void);

/* Output above this stops the peer from reading until it drains below OUT_LOW_WATER. */
#define OUT_HIGH_WATER (256u * 1024u)
#define OUT_LOW_WATER (64u * 1024u)

struct conn;
typedef void (*conn_cb)(struct conn *c);

struct conn {
    int fd;
    SSL *ssl;         /* NULL: plain. Owned (freed by conn_destroy) iff ssl_owned */
    bool ssl_owned;   /* client sessions: ours; server links: libpq's, never freed here */
    bool handshaking; /* TLS accept in progress: write readiness goes to on_read */
    ev_io rio, wio;
    struct iobuf in, out;
    conn_cb on_read;    /* socket readable */
    conn_cb on_drained; /* output fell below the low-water mark */
    conn_cb on_release; /* after the loop iteration in which conn_close was called */
    struct conn *flush_next, *free_next;
    bool flush_queued;
    bool reading;
    bool closing;                 /* conn_close called; no more I/O */
    bool close_after_flush;       /* finish writing what is queued (an error message), then close */
    bool linger;                  /* ... and it was written: conn_close_fd lingers */
    uint64_t bytes_in, bytes_out; /* read from and written to the socket (after TLS) */
};

void conn_init(struct conn *c, int fd, conn_cb on_read, conn_cb on_drained, conn_cb on_release);
/* (Re)binds both watchers to fd with the standard callbacks, both stopped. */
void conn_attach_fd(struct conn *c, int fd);
/* Closes the socket of a released connection (its owner's on_release). After an error message
 * (conn_close_after_flush), lingers so that the message is not lost to a reset. */
void conn_close_fd(struct conn *c);
/* At exit: closes the sockets still lingering. */
void conn_linger_end_all(void);
void conn_start_reading(struct conn *c);
void conn_stop_reading(struct conn *c);
/* conn_start_reading after backpressure: input already buffered (a whole pipeline may be) gets
 * on_read called in this loop iteration, since no socket event will come for it. */
void conn_resume_reading(struct conn *c);

enum io_result { IO_OK, IO_AGAIN, IO_EOF, IO_ERROR };
/* Reads what the socket has into c->in (up to max bytes of free space). */
enum io_result conn_fill(struct conn *c, size_t max);
/* Queues bytes for the next flush. False only when memory runs out. */
bool conn_send(struct conn *c, const void *p, size_t n) __attribute__((warn_unused_result));
void conn_want_flush(struct conn *c);
/* Stops I/O and schedules on_release after this iteration; the fd stays open until then. */
void conn_close(struct conn *c);
/* Flush what is queued, then close (used for FATAL errors). */
void conn_close_after_flush(struct conn *c);
void conn_destroy(struct conn *c);

/* Server side of TLS on a client connection. conn_tls_begin writes plain (the protocol's one-byte
 * answer to SSLRequest) unencrypted at once, which needs an empty out buffer, then takes ssl
 * (owned from here on, even on failure). conn_tls_accept drives the handshake: IO_OK when it is
 * done, IO_AGAIN when the right watcher is armed (on_read is called again), IO_ERROR with a
 * reason in why. */
bool conn_tls_begin(struct conn *c, SSL *ssl, const void *plain, size_t n) __attribute__((warn_unused_result));
enum io_result conn_tls_accept(struct conn *c, char *why, size_t whylen);

/* Installs the per-iteration flush and release watcher on the loop. */
void conn_global_init(struct ev_loop *loop);

#endif
