/* Connection plumbing shared by clients and servers. Writes are appended to the out buffer and
 * flushed together after each readable socket's input is handled (and from an ev_prepare watcher
 * for what timers and other callbacks queued); EV_WRITE is armed only
 * while a socket is full. Connections are never freed inside a callback: conn_close queues them
 * and the same prepare watcher releases them after the iteration. */
#include "proxy/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

static struct ev_loop *g_loop;
static ev_prepare g_prepare;
static struct conn *g_flush_list;
static struct conn *g_free_list;

/* Empty buffers leave their connection: an idle client holds none. Standard-sized ones wait on a
 * bounded free list for the next connection that reads or writes, so a busy loop does not call
 * malloc per message. Under AddressSanitizer the list is off so that a use after consume shows. */
#define IOBUF_STD 8192u
struct spare {
    struct spare *next;
};
static struct spare *g_spares;
static size_t g_nspares;

static bool spare_room(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return false;
#else
    return g_nspares < 256u;
#endif
}

static uint8_t *buf_get(size_t cap)
{
    if (cap == IOBUF_STD && g_spares) {
        struct spare *sp = g_spares;
        g_spares = sp->next;
        g_nspares--;
        return (uint8_t *)sp;
    }
    return malloc(cap);
}

static void buf_put(uint8_t *p, size_t cap)
{
    if (p && cap == IOBUF_STD && spare_room()) {
        struct spare *sp = (struct spare *)(void *)p;
        sp->next = g_spares;
        g_spares = sp;
        g_nspares++;
        return;
    }
    free(p);
}

void iobuf_spares_trim(void)
{
    while (g_spares) {
        struct spare *sp = g_spares;
        g_spares = sp->next;
        free(sp);
    }
    g_nspares = 0;
}

bool iobuf_grow(struct iobuf *b, size_t n)
{
    size_t len = iobuf_len(b);
    if (b->start > 0 && b->cap - len >= n) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        return true;
    }
    size_t cap = b->cap ? b->cap : IOBUF_STD;
    while (cap - len < n) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    uint8_t *p = buf_get(cap);
    if (!p)
        return false;
    if (len)
        memcpy(p, b->data + b->start, len);
    buf_put(b->data, b->cap);
    b->data = p;
    b->cap = cap;
    b->start = 0;
    b->end = len;
    return true;
}

void iobuf_consume(struct iobuf *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        iobuf_release(b);
}

void iobuf_release(struct iobuf *b)
{
    if (iobuf_len(b) > 0)
        return;
    buf_put(b->data, b->cap);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void iobuf_free(struct iobuf *b)
{
    buf_put(b->data, b->cap);
    memset(b, 0, sizeof *b);
}

static void flush_one(struct conn *c);

static void flush_queued(void)
{
    struct conn *list = g_flush_list;
    g_flush_list = NULL;
    while (list) {
        struct conn *c = list;
        list = c->flush_next;
        c->flush_queued = false;
        flush_one(c);
    }
}

/* What one readable socket's input produced goes out at once: everything it had was handled in
 * on_read, so nothing more would join the writes, while waiting for the rest of the iteration's
 * events would hold a query back from an idle server (or a reply from its client) for all of
 * them. */
static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, rio);
    if (!c->closing)
        c->on_read(c);
    flush_queued();
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, wio);
    if (c->handshaking) {
        /* SSL_accept wanted to write: its owner's read path drives the handshake. */
        ev_io_stop(loop, &c->wio);
        if (!c->closing)
            c->on_read(c);
        return;
    }
    flush_one(c);
}

void conn_init(struct conn *c, int fd, conn_cb on_read, conn_cb on_drained, conn_cb on_release)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->on_read = on_read;
    c->on_drained = on_drained;
    c->on_release = on_release;
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
}

void conn_attach_fd(struct conn *c, int fd)
{
    ev_io_stop(g_loop, &c->rio);
    ev_io_stop(g_loop, &c->wio);
    c->reading = false;
    c->fd = fd;
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
}

void conn_resume_reading(struct conn *c)
{
    conn_start_reading(c);
    if (c->reading && iobuf_len(&c->in) > 0)
        ev_feed_event(g_loop, &c->rio, EV_READ);
}

void conn_start_reading(struct conn *c)
{
    if (!c->reading && !c->closing) {
        ev_io_start(g_loop, &c->rio);
        c->reading = true;
        /* Decrypted bytes already inside OpenSSL do not make the socket readable. */
        if (c->ssl && !c->handshaking && SSL_pending(c->ssl) > 0)
            ev_feed_event(g_loop, &c->rio, EV_READ);
    }
}

void conn_stop_reading(struct conn *c)
{
    if (c->reading) {
        ev_io_stop(g_loop, &c->rio);
        c->reading = false;
    }
}

/* What an SSL_read or SSL_write that returned r <= 0 means. */
static enum io_result ssl_result(const SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return IO_AGAIN;
    return e == SSL_ERROR_ZERO_RETURN ? IO_EOF : IO_ERROR;
}

/* What errno means after a failed read or send. */
static enum io_result errno_result(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? IO_AGAIN : IO_ERROR;
}

static int ssl_len(size_t n)
{
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

static ssize_t transport_read(struct conn *c, void *p, size_t n, enum io_result *res)
{
    if (c->ssl) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, p, ssl_len(n));
        if (r > 0) {
            c->bytes_in += (uint64_t)r;
            return r;
        }
        *res = ssl_result(c->ssl, r);
        return -1;
    }
    ssize_t r = recv(c->fd, p, n, 0);
    if (r > 0) {
        c->bytes_in += (uint64_t)r;
        return r;
    }
    *res = r == 0 ? IO_EOF : errno_result();
    return -1;
}

/* *res is IO_AGAIN when the socket is full; any other result means the peer is gone. */
static ssize_t transport_write(struct conn *c, const void *p, size_t n, enum io_result *res)
{
    if (c->ssl) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, ssl_len(n));
        if (r > 0) {
            c->bytes_out += (uint64_t)r;
            return r;
        }
        *res = ssl_result(c->ssl, r);
        return -1;
    }
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r >= 0) {
        c->bytes_out += (uint64_t)r;
        return r;
    }
    *res = errno_result();
    return -1;
}

/* SSL_read returns one record at a time, and what OpenSSL already holds will not wake epoll:
 * take it now while there is room, else come back for it in this iteration. */
static void fill_pending(struct conn *c, size_t room)
{
    while (room > 0 && SSL_pending(c->ssl) > 0) {
        enum io_result res = IO_OK;
        ssize_t r = transport_read(c, c->in.data + c->in.end, room, &res);
        if (r < 0)
            break; /* the next call reports an error or EOF */
        c->in.end += (size_t)r;
        room -= (size_t)r;
    }
    if (SSL_pending(c->ssl) > 0 && c->reading)
        ev_feed_event(g_loop, &c->rio, EV_READ);
}

enum io_result conn_fill(struct conn *c, size_t max)
{
    if (c->closing)
        return IO_ERROR;
    if (!iobuf_reserve(&c->in, 4096))
        return IO_ERROR;
    size_t room = c->in.cap - c->in.end;
    if (room > max)
        room = max;
    enum io_result res = IO_OK;
    ssize_t r = transport_read(c, c->in.data + c->in.end, room, &res);
    if (r < 0) {
        iobuf_release(&c->in); /* nothing came: an idle connection keeps no buffer */
        return res;
    }
    c->in.end += (size_t)r;
    if (c->ssl)
        fill_pending(c, room - (size_t)r);
    return IO_OK;
}

bool conn_send(struct conn *c, const void *p, size_t n)
{
    if (c->closing)
        return true; /* nobody will read it: dropping is correct */
    if (!iobuf_append(&c->out, p, n))
        return false;
    conn_want_flush(c);
    return true;
}

void conn_want_flush(struct conn *c)
{
    if (!c->flush_queued && !c->closing) {
        c->flush_queued = true;
        c->flush_next = g_flush_list;
        g_flush_list = c;
    }
}

static void release_later(struct conn *c)
{
    c->free_next = g_free_list;
    g_free_list = c;
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->ssl_owned && c->ssl && !c->handshaking) {
        /* Best-effort close_notify, while the fd is still open; the peer may be gone. */
        SSL_set_quiet_shutdown(c->ssl, 0);
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    /* Both watchers unconditionally: during a libpq handshake they are armed directly, without
     * the reading flag. */
    ev_io_stop(g_loop, &c->rio);
    ev_io_stop(g_loop, &c->wio);
    c->reading = false;
    release_later(c);
}

void conn_close_after_flush(struct conn *c)
{
    conn_stop_reading(c);
    c->close_after_flush = true;
    conn_want_flush(c);
}

/* Writes until the out buffer is empty (IO_OK) or the socket is full (IO_AGAIN, wio armed);
 * IO_ERROR when the peer is gone. */
static enum io_result write_out(struct conn *c)
{
    while (iobuf_len(&c->out) > 0) {
        enum io_result res = IO_OK;
        ssize_t w = transport_write(c, iobuf_head(&c->out), iobuf_len(&c->out), &res);
        if (w < 0 && res == IO_AGAIN) {
            ev_io_start(g_loop, &c->wio);
            return IO_AGAIN;
        }
        if (w < 0)
            return IO_ERROR;
        iobuf_consume(&c->out, (size_t)w);
    }
    return IO_OK;
}

/* The peer is gone; the read side will see it and close. Drop the output. */
static void drop_output(struct conn *c)
{
    iobuf_consume(&c->out, iobuf_len(&c->out));
    ev_io_stop(g_loop, &c->wio);
    if (c->close_after_flush)
        conn_close(c);
    else
        c->on_read(c); /* lets the owner observe the error at once */
}

/* Writes as much as the socket takes. Invariant: wio is active iff output is pending and the
 * socket said EAGAIN. */
static void flush_one(struct conn *c)
{
    if (c->closing)
        return;
    size_t before = iobuf_len(&c->out);
    if (write_out(c) == IO_ERROR) {
        drop_output(c);
        return;
    }
    if (iobuf_len(&c->out) == 0) {
        if (ev_is_active(&c->wio) || ev_is_pending(&c->wio)) /* seldom: only after EAGAIN */
            ev_io_stop(g_loop, &c->wio);
        if (c->close_after_flush) {
            c->linger = true; /* the message is in the socket: conn_close_fd keeps it from a reset */
            conn_close(c);
            return;
        }
    }
    if (before >= OUT_LOW_WATER && iobuf_len(&c->out) < OUT_LOW_WATER && c->on_drained)
        c->on_drained(c);
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    /* Flushing can queue closes and releasing can queue flushes (a server reset after its client
     * left), so go round until both lists are empty before the loop blocks. */
    while (g_flush_list || g_free_list) {
        flush_queued();
        struct conn *list = g_free_list;
        g_free_list = NULL;
        while (list) {
            struct conn *c = list;
            list = c->free_next;
            c->on_release(c);
        }
    }
}

void conn_global_init(struct ev_loop *loop)
{
    g_loop = loop;
    ev_prepare_init(&g_prepare, prepare_cb);
    ev_prepare_start(loop, &g_prepare);
}

void conn_destroy(struct conn *c)
{
    iobuf_free(&c->in);
    iobuf_free(&c->out);
    if (c->ssl_owned)
        SSL_free(c->ssl);
    c->ssl = NULL;
    c->ssl_owned = false;
}

bool conn_tls_begin(struct conn *c, SSL *ssl, const void *plain, size_t n)
{
    c->ssl = ssl;
    c->ssl_owned = true;
    c->handshaking = true;
    /* The answer must precede the handshake on the wire and must not be encrypted, so it skips
     * the out buffer. A fresh socket takes one byte; anything else ends the connection. */
    if (iobuf_len(&c->out) != 0)
        return false;
    ssize_t w = send(c->fd, plain, n, MSG_NOSIGNAL);
    return w >= 0 && (size_t)w == n;
}

enum io_result conn_tls_accept(struct conn *c, char *why, size_t whylen)
{
    ERR_clear_error();
    int r = SSL_accept(c->ssl);
    if (r == 1) {
        c->handshaking = false;
        ev_io_stop(g_loop, &c->wio);
        conn_start_reading(c);
        /* A client may send its first message together with its last handshake record. */
        ev_feed_event(g_loop, &c->rio, EV_READ);
        return IO_OK;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        ev_io_stop(g_loop, &c->wio);
        conn_start_reading(c);
        return IO_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn_stop_reading(c);
        ev_io_start(g_loop, &c->wio);
        return IO_AGAIN;
    }
    unsigned long code = ERR_peek_error();
    if (code)
        ERR_error_string_n(code, why, whylen);
    else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
        snprintf(why, whylen, "client closed the connection");
    else
        snprintf(why, whylen, "SSL error %d", e);
    ERR_clear_error();
    return IO_ERROR;
}

/* ---- lingering close ----
 * A socket closed with input it has not read makes the kernel send a reset, and a reset makes the
 * peer's kernel drop what the peer had not read yet: the error message pgmesh just sent, when the
 * client's next query crossed it (a server lost mid-transaction). After an error message the
 * write side is shut (the peer reads the message, then end of file) and input is read and dropped
 * until the peer closes too, for at most LINGER_S. Bounded: past LINGER_MAX at once, a plain
 * close. */
#define LINGER_S 1.0
#define LINGER_MAX 64

struct lingering_fd {
    ev_io io;
    ev_timer timer;
    struct lingering_fd *prev, *next;
};
static struct lingering_fd *lingering;
static unsigned nlingering;

static void linger_end(struct lingering_fd *l)
{
    /* Both watchers were unreferenced: the loop's lifetime is not theirs. */
    ev_ref(g_loop);
    ev_io_stop(g_loop, &l->io);
    ev_ref(g_loop);
    ev_timer_stop(g_loop, &l->timer);
    close(l->io.fd);
    if (l->prev)
        l->prev->next = l->next;
    else
        lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    nlingering--;
    free(l);
}

static void linger_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct lingering_fd *l = container_of(w, struct lingering_fd, io);
    char buf[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t r = recv(w->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        linger_end(l); /* the peer closed (or reset): nothing left to protect */
        return;
    }
}

static void linger_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    linger_end(container_of(w, struct lingering_fd, timer));
}

void conn_close_fd(struct conn *c)
{
    int fd = c->fd;
    if (fd < 0)
        return;
    struct lingering_fd *l = c->linger && nlingering < LINGER_MAX ? calloc(1, sizeof *l) : NULL;
    if (!l || shutdown(fd, SHUT_WR) != 0) {
        free(l);
        close(fd);
        return;
    }
    ev_io_init(&l->io, linger_read_cb, fd, EV_READ);
    ev_timer_init(&l->timer, linger_timer_cb, LINGER_S, 0.);
    ev_io_start(g_loop, &l->io);
    ev_unref(g_loop);
    ev_timer_start(g_loop, &l->timer);
    ev_unref(g_loop);
    l->next = lingering;
    if (lingering)
        lingering->prev = l;
    lingering = l;
    nlingering++;
}

void conn_linger_end_all(void)
{
    while (lingering)
        linger_end(lingering);
}
