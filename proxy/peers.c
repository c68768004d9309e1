/* Cancel requests sent on to peer instances (see peers.h). */
#include "proxy/peers.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/wire.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/runtime.h"

/* A peer that does not take the connection this fast is down or unreachable; the cancel is
 * dropped, as PostgreSQL does not promise a cancel arrives either. */
#define PEER_CONNECT_TIMEOUT_S 2.0

struct forward {
    ev_io io;
    ev_timer timer;
    int peer;
    uint8_t packet[16];
};

static void forward_end(struct forward *f, const char *failure)
{
    if (failure)
        log_warn("could not pass a cancel request to peer %d: %s", f->peer, failure);
    else
        LOG_EVENT(LOG_INFO, NULL, "cancel_forwarded", LOG_FIELDS(LOG_INT("peer", f->peer)),
                  "cancel request passed to peer %d", f->peer);
    ev_io_stop(rt.loop, &f->io);
    ev_timer_stop(rt.loop, &f->timer);
    close(f->io.fd);
    free(f);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct forward *f = (struct forward *)w;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        forward_end(f, strerror(soerr));
        return;
    }
    /* 16 bytes into a fresh socket's empty buffer: all or an error. */
    ssize_t n = send(w->fd, f->packet, sizeof f->packet, MSG_NOSIGNAL);
    forward_end(f, n == (ssize_t)sizeof f->packet ? NULL : strerror(errno));
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct forward *f = (struct forward *)((char *)w - offsetof(struct forward, timer));
    forward_end(f, "connection timed out");
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

void peers_forward_cancel(int id, uint32_t pid, uint32_t key)
{
    struct peer_addr peers[PEERS_MAX];
    size_t n = 0;
    char err[256];
    if (!peers_parse(rt.cfg->peers, peers, &n, err, sizeof err))
        n = 0;
    const struct peer_addr *p = NULL;
    for (size_t i = 0; i < n && !p; i++)
        if (peers[i].id == id)
            p = &peers[i];
    if (!p) {
        LOG_EVENT(LOG_INFO, NULL, "cancel_ignored", NULL,
                  "cancel request for peer %d ignored: no such peer in peers", id);
        return;
    }
    if ((key & PEERS_KEY_HOPS) == 0) {
        log_warn("cancel request for peer %d ignored: it was passed between peers %u times already (do the "
                 "instances' peers lines agree?)",
                 id, PEERS_KEY_HOPS);
        return;
    }
    key--; /* the hop count, in the low bits, is not zero */
    struct forward *f = calloc(1, sizeof *f);
    int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!f || fd < 0) {
        free(f);
        if (fd >= 0)
            close(fd);
        log_warn("could not pass a cancel request to peer %d: %s", id, strerror(errno));
        return;
    }
    f->peer = id;
    put32(f->packet, 16);
    put32(f->packet + 4, REQUEST_CANCEL);
    put32(f->packet + 8, pid);
    put32(f->packet + 12, key);
    ev_io_init(&f->io, on_writable, fd, EV_WRITE);
    ev_timer_init(&f->timer, on_timeout, PEER_CONNECT_TIMEOUT_S, 0.);
    if (connect(fd, (const struct sockaddr *)&p->sa, p->len) != 0 && errno != EINPROGRESS) {
        f->io.fd = fd;
        forward_end(f, strerror(errno));
        return;
    }
    ev_io_start(rt.loop, &f->io);
    ev_timer_start(rt.loop, &f->timer);
}
