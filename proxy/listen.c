/* Listeners: listen_addr (a name or address; "*" for all) on listen_port, and a Unix socket
 * .s.PGSQL.<port> in unix_socket_dir, the path libpq and psql use for host=<dir>. */
#include "proxy/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/cidr.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/runtime.h"
#include "proxy/workers.h"
#include "proxy/workmsg.h"

#define MAX_LISTENERS (4 * WORKERS_MAX + 1)

struct listener {
    ev_io io;
    int fd;
    bool is_unix;
    int worker; /* the worker whose SO_REUSEPORT socket this is; -1: every worker's (Unix) */
    char unix_path[128];
};

/* Out of file descriptors (or kernel memory), accept fails while the connection stays queued, and
 * a level-triggered watcher would fire again at once: a busy loop. Accepting pauses instead and is
 * tried again after ACCEPT_PAUSE_S, when closed connections may have freed descriptors; one line
 * is logged per pause, however many retries it takes. */
#define ACCEPT_PAUSE_S 0.25

static struct listener listeners[MAX_LISTENERS];
static int nlisteners;
static ev_timer resume_timer;
static bool pause_logged; /* this run of failures is logged; cleared by an accept that works */

static void pause_accepting(int err)
{
    if (!pause_logged)
        log_warn("accept failed: %s: not accepting new connections for now (%d open client connections); "
                 "retrying every %.2g s",
                 strerror(err), rt.nclients, ACCEPT_PAUSE_S);
    pause_logged = true;
    for (int i = 0; i < nlisteners; i++)
        ev_io_stop(rt.loop, &listeners[i].io);
    ev_timer_stop(rt.loop, &resume_timer);
    ev_timer_set(&resume_timer, ACCEPT_PAUSE_S, 0.);
    ev_timer_start(rt.loop, &resume_timer);
}

static void resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    for (int i = 0; i < nlisteners; i++)
        ev_io_start(loop, &listeners[i].io);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct listener *l = container_of(w, struct listener, io);
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        int fd = accept4(l->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warn("accept failed: %s", strerror(errno));
            return;
        }
        if (pause_logged) {
            pause_logged = false;
            log_info("accepting new connections again (%d open client connections)", rt.nclients);
        }
        char addr[64] = "unix";
        enum client_proxy proxy = CLIENT_PROXY_OFF;
        if (!l->is_unix) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
            getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, port, sizeof port,
                        NI_NUMERICHOST | NI_NUMERICSERV);
            snprintf(addr, sizeof addr, "%s:%s", host, port);
            /* Trust is decided here, with the config of the accept: a reload applies to new clients. */
            if (rt.cfg->proxy_protocol)
                proxy = cidr_list_match(&rt.cfg->proxy_trusted, (const struct sockaddr *)&sa)
                            ? CLIENT_PROXY_TRUSTED
                            : CLIENT_PROXY_UNTRUSTED;
        }
        int to = workers_place(rt.cfg->default_pool_size);
        if (to != worker_index) {
            if (workmsg_pass_client(to, fd, l->is_unix, addr, proxy)) {
                close(fd); /* the other worker has its own copy */
                continue;
            }
            workers_placed_done(to);
        }
        client_accept(fd, l->is_unix, addr, proxy);
    }
}

void listen_adopt(int fd, bool is_unix, const char *addr, int proxy)
{
    if (rt.shutting_down) {
        workers_placed_done(worker_index);
        close(fd);
        return;
    }
    client_accept(fd, is_unix, addr, (enum client_proxy)proxy);
    workers_placed_done(worker_index); /* counted among the clients now: the load never dips */
}

static bool add_listener(int fd, bool is_unix, int worker, const char *path)
{
    if (nlisteners == MAX_LISTENERS) {
        close(fd);
        log_error("too many listening sockets");
        return false;
    }
    struct listener *l = &listeners[nlisteners++];
    l->fd = fd;
    l->is_unix = is_unix;
    l->worker = worker;
    snprintf(l->unix_path, sizeof l->unix_path, "%s", path ? path : "");
    return true;
}

/* One listening socket for one resolved address. 1: listening; 0: no socket of that family on
 * this host (skipped); -1: bind or listen failed, or no room for it (logged). */
static int listen_one(const struct addrinfo *ai, const char *addr, int port, int worker)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* One socket per worker on the same port, so that no worker's accepts wait on another's loop;
     * where a connection is served is workers_place's choice, not the kernel's. */
    if (worker_count > 1 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        log_error("could not listen on %s port %d: SO_REUSEPORT: %s", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        log_error("could not listen on %s port %d: %s", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    return add_listener(fd, false, worker, NULL) ? 1 : -1;
}

static bool listen_tcp(const char *addr, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(strcmp(addr, "*") == 0 ? NULL : addr, portstr, &hints, &res);
    if (rc != 0) {
        log_error("listen_addr %s: %s", addr, gai_strerror(rc));
        return false;
    }
    int opened = 0, r = 0;
    for (int w = 0; w < worker_count && r >= 0; w++) {
        for (const struct addrinfo *ai = res; ai && r >= 0; ai = ai->ai_next) {
            r = listen_one(ai, addr, port, w);
            opened += r > 0;
        }
    }
    freeaddrinfo(res);
    if (r < 0)
        return false;
    if (!opened)
        log_error("could not listen on %s port %d", addr, port);
    return opened > 0;
}

static bool listen_unix(const char *dir, int port)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%d", dir, port);
    if (n < 0 || (size_t)n >= sizeof sun.sun_path) {
        log_error("unix_socket_dir %s is too long", dir);
        return false;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    unlink(sun.sun_path); /* a stale socket from a killed run */
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, 1024) != 0) {
        log_error("could not listen on %s: %s", sun.sun_path, strerror(errno));
        close(fd);
        return false;
    }
    chmod(sun.sun_path, 0777);
    return add_listener(fd, true, -1, sun.sun_path);
}

bool listen_open(void)
{
    const struct config *cfg = rt.cfg;
    if (cfg->listen_addr[0] && !listen_tcp(cfg->listen_addr, cfg->listen_port))
        return false;
    if (cfg->unix_socket_dir[0] && !listen_unix(cfg->unix_socket_dir, cfg->listen_port))
        return false;
    log_info("listening on %s%s%d%s%s", cfg->listen_addr[0] ? cfg->listen_addr : "",
             cfg->listen_addr[0] ? ":" : "port ", cfg->listen_port,
             cfg->unix_socket_dir[0] ? " and unix socket in " : "", cfg->unix_socket_dir);
    return true;
}

void listen_keep_worker(int worker)
{
    int kept = 0;
    for (int i = 0; i < nlisteners; i++) {
        if (listeners[i].worker >= 0 && listeners[i].worker != worker)
            close(listeners[i].fd);
        else
            listeners[kept++] = listeners[i];
    }
    nlisteners = kept;
    for (int i = 0; i < nlisteners; i++)
        ev_io_init(&listeners[i].io, accept_cb, listeners[i].fd,
                   EV_READ); /* here, once each has its final place */
}

void listen_start(void)
{
    ev_timer_init(&resume_timer, resume_cb, ACCEPT_PAUSE_S, 0.);
    for (int i = 0; i < nlisteners; i++)
        ev_io_start(rt.loop, &listeners[i].io);
}

void listen_stop(void)
{
    ev_timer_stop(rt.loop, &resume_timer);
    for (int i = 0; i < nlisteners; i++) {
        ev_io_stop(rt.loop, &listeners[i].io);
        close(listeners[i].fd);
        /* With workers the supervisor owns the path: the others may still be serving. */
        if (listeners[i].is_unix && worker_count == 1)
            unlink(listeners[i].unix_path);
    }
    nlisteners = 0;
}

void listen_close_all(void)
{
    for (int i = 0; i < nlisteners; i++) {
        close(listeners[i].fd);
        if (listeners[i].is_unix)
            unlink(listeners[i].unix_path);
    }
    nlisteners = 0;
}
