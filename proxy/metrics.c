/* The metrics listener: a small HTTP/1.1 responder on the event loop. Each connection sends one
 * GET (or HEAD) and gets one response, then pgmesh closes it; a request that is not complete
 * within METRICS_TIMEOUT_S, larger than REQUEST_MAX or beyond MAX_CONNS open ones is dropped.
 * Nothing here blocks: the response is built whole (a few KiB per pool and role) and written as the
 * socket takes it. */
#include "proxy/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/runtime.h"

#define REQUEST_MAX 4096
#define MAX_CONNS 16
#define METRICS_TIMEOUT_S 5.0

struct mconn {
    ev_io io;
    ev_timer timer;
    int fd;
    char req[REQUEST_MAX];
    size_t len;
    char *out;
    size_t out_len, out_off;
};

static int listen_fd = -1;
static ev_io accept_io;
static int nconns;

static void mconn_close(struct mconn *m)
{
    ev_io_stop(rt.loop, &m->io);
    ev_timer_stop(rt.loop, &m->timer);
    close(m->fd);
    free(m->out);
    free(m);
    nconns--;
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    mconn_close(container_of(w, struct mconn, timer));
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct mconn *m = container_of(w, struct mconn, io);
    while (m->out_off < m->out_len) {
        ssize_t n = send(m->fd, m->out + m->out_off, m->out_len - m->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the watcher calls again when there is room */
        if (n <= 0)
            break;
        m->out_off += (size_t)n;
    }
    mconn_close(m);
}

static void respond(struct mconn *m, int status, const char *type, const char *body, size_t body_len, bool head)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 503 ? "Service Unavailable"
                                         : "Bad Request";
    char *out = NULL;
    size_t out_len = 0;
    FILE *f = open_memstream(&out, &out_len);
    if (!f) {
        mconn_close(m);
        return;
    }
    fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
            reason, type, body_len);
    if (!head && body_len)
        fwrite(body, 1, body_len, f);
    if (fclose(f) != 0) {
        free(out);
        mconn_close(m);
        return;
    }
    m->out = out;
    m->out_len = out_len;
    ev_io_stop(rt.loop, &m->io);
    ev_io_init(&m->io, write_cb, m->fd, EV_WRITE);
    ev_io_start(rt.loop, &m->io);
}

static void handle_request(struct mconn *m)
{
    /* "GET /metrics HTTP/1.1": the method, the path up to '?' or ' ', anything after ignored. */
    char method[8], path[256];
    if (sscanf(m->req, "%7s %255s", method, path) != 2) {
        respond(m, 400, "text/plain", "bad request\n", 12, false);
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond(m, 405, "text/plain", "only GET and HEAD\n", 18, false);
        return;
    }
    path[strcspn(path, "?")] = '\0';
    if (strcmp(path, "/metrics") == 0) {
        size_t len = 0;
        char *body = metrics_render_all(&len);
        if (!body) {
            mconn_close(m);
            return;
        }
        respond(m, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, head);
        free(body);
    } else if (strcmp(path, "/healthz") == 0) {
        respond(m, 200, "text/plain", "ok\n", 3, head);
    } else if (strcmp(path, "/readyz") == 0) {
        if (rt.shutting_down)
            respond(m, 503, "text/plain", "shutting down\n", 14, head);
        else
            respond(m, 200, "text/plain", "ready\n", 6, head);
    } else {
        respond(m, 404, "text/plain", "not found: try /metrics, /healthz or /readyz\n", 45, head);
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct mconn *m = container_of(w, struct mconn, io);
    ssize_t n = recv(m->fd, m->req + m->len, sizeof m->req - 1 - m->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        mconn_close(m);
        return;
    }
    m->len += (size_t)n;
    m->req[m->len] = '\0';
    if (strstr(m->req, "\r\n\r\n") || strstr(m->req, "\n\n")) {
        handle_request(m);
        return;
    }
    if (m->len == sizeof m->req - 1)
        respond(m, 400, "text/plain", "request too large\n", 18, false);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors: the next readiness tries again */
        struct mconn *m = nconns < MAX_CONNS ? calloc(1, sizeof *m) : NULL;
        if (!m) {
            close(fd);
            continue;
        }
        nconns++;
        m->fd = fd;
        ev_io_init(&m->io, read_cb, fd, EV_READ);
        ev_io_start(loop, &m->io);
        ev_timer_init(&m->timer, timeout_cb, METRICS_TIMEOUT_S, 0.);
        ev_timer_start(loop, &m->timer);
    }
}

/* "host:port", "[v6]:port" or ":port" (all addresses). */
static bool split_listen(const char *spec, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon[1] == '\0' || strlen(colon + 1) >= port_len)
        return false;
    const char *h = spec;
    size_t hl = (size_t)(colon - spec);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= host_len)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, port_len, "%s", colon + 1);
    return true;
}

bool metrics_start(void)
{
    const char *spec = rt.cfg->metrics_listen;
    if (!spec || !spec[0])
        return true;
    char host[256], port[16];
    if (!split_listen(spec, host, sizeof host, port, sizeof port)) {
        log_error("metrics_listen %s: expected host:port", spec);
        return false;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        log_error("metrics_listen %s: %s", spec, gai_strerror(rc));
        return false;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        log_error("metrics_listen %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return false;
    }
    freeaddrinfo(res);
    listen_fd = fd;
    ev_io_init(&accept_io, accept_cb, fd, EV_READ);
    ev_io_start(rt.loop, &accept_io);
    log_info("metrics on http://%s/metrics", spec);
    return true;
}

void metrics_stop(void)
{
    if (listen_fd < 0)
        return;
    ev_io_stop(rt.loop, &accept_io);
    close(listen_fd);
    listen_fd = -1;
}
