/* Messages between worker processes (see workmsg.h). Each is one datagram on the receiver's
 * inbox; a gather's carries one end of a fresh stream socket pair (SCM_RIGHTS), on which the
 * answer comes back whole and then EOF, so answers need no framing and a worker that dies
 * mid-answer leaves nothing behind for the next gather to misread. */
#include "proxy/workmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/cancel.h"
#include "proxy/log.h"

/* How long a gather waits for the slowest worker: each answers from its loop between events. */
#define GATHER_TIMEOUT_MS 2000

struct msg {
    char type; /* 'C' cancel, 'G' gather, 'A' action, 'P' a passed connection */
    char kind;
    uint32_t pid, key;
    char arg[WORKMSG_ARG_MAX];
};

static ev_io inbox_io;
static struct workmsg_handlers handlers;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Writes the whole answer to a requester that reads it as it comes; a requester that went away
 * (timed out) ends it early. */
static void answer(const struct msg *m, int fd)
{
    size_t len = 0;
    char *body = handlers.answer ? handlers.answer(m->kind, m->arg, &len) : NULL;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = GATHER_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (size_t off = 0; body && off < len;) {
        ssize_t n = send(fd, body + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    free(body);
    close(fd);
}

/* One datagram from the inbox; false when there is none left. */
static bool handle_one(int inbox)
{
    struct msg m;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(inbox, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return false;
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (n != (ssize_t)sizeof m) {
        if (fd >= 0)
            close(fd);
        return true;
    }
    m.arg[WORKMSG_ARG_MAX - 1] = '\0';
    if (m.type == 'C')
        cancel_request(m.pid, m.key);
    else if (m.type == 'A' && handlers.act)
        handlers.act(m.kind, m.arg);
    if (m.type == 'P' && fd >= 0 && handlers.adopt)
        handlers.adopt(fd, m.kind == 'u', m.arg, (int)m.key);
    else if (m.type == 'G' && fd >= 0)
        answer(&m, fd);
    else if (fd >= 0)
        close(fd);
    return true;
}

static void on_inbox(struct ev_loop *loop, ev_io *w, int revents)
{
    while (handle_one(w->fd))
        ;
}

void workmsg_start(struct ev_loop *loop, const struct workmsg_handlers *h)
{
    if (worker_count < 2)
        return;
    handlers = *h;
    ev_io_init(&inbox_io, on_inbox, workers_inbox_fd(worker_index, true), EV_READ);
    ev_io_start(loop, &inbox_io);
}

static bool send_msg(int worker, const struct msg *m, int fd)
{
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(control, 0, sizeof control);
        mh.msg_control = control;
        mh.msg_controllen = sizeof control;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return sendmsg(workers_inbox_fd(worker, false), &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof *m;
}

bool workmsg_forward_cancel(uint32_t pid, uint32_t key)
{
    int w = workers_pid_worker(pid);
    if (w == worker_index)
        return false;
    if (w >= worker_count) {
        LOG_EVENT(LOG_INFO, NULL, "cancel_ignored", NULL, "cancel request for worker %d ignored: there are %d", w,
                  worker_count);
        return true;
    }
    struct msg m = {.type = 'C', .pid = pid, .key = key};
    if (!send_msg(w, &m, -1))
        log_warn("could not pass a cancel request to worker %d: %s", w, strerror(errno));
    else
        LOG_EVENT(LOG_INFO, NULL, "cancel_forwarded", LOG_FIELDS(LOG_INT("worker", w)),
                  "cancel request passed to worker %d", w);
    return true;
}

bool workmsg_pass_client(int w, int fd, bool is_unix, const char *addr, int proxy)
{
    struct msg m = {.type = 'P', .kind = is_unix ? 'u' : 't', .key = (uint32_t)proxy};
    snprintf(m.arg, sizeof m.arg, "%s", addr);
    return w != worker_index && w < worker_count && send_msg(w, &m, fd);
}

void workmsg_tell(char kind, const char *arg, int only)
{
    struct msg m = {.type = 'A', .kind = kind};
    snprintf(m.arg, sizeof m.arg, "%s", arg ? arg : "");
    for (int i = 0; i < worker_count; i++)
        if (i != worker_index && (only < 0 || i == only) && !send_msg(i, &m, -1))
            log_warn("could not pass an admin command to worker %d: %s", i, strerror(errno));
}

void workmsg_gather(char kind, const char *arg, char *out[WORKERS_MAX], size_t len[WORKERS_MAX])
{
    struct msg m = {.type = 'G', .kind = kind};
    snprintf(m.arg, sizeof m.arg, "%s", arg ? arg : "");
    int fds[WORKERS_MAX];
    size_t cap[WORKERS_MAX] = {0};
    int pending = 0;
    for (int i = 0; i < WORKERS_MAX; i++)
        fds[i] = -1;
    for (int i = 0; i < worker_count; i++) {
        out[i] = NULL, len[i] = 0;
        int sv[2];
        if (i == worker_index || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
            continue;
        if (send_msg(i, &m, sv[1])) {
            fds[i] = sv[0];
            pending++;
        } else {
            close(sv[0]);
        }
        close(sv[1]);
    }
    double deadline = now_ms() + GATHER_TIMEOUT_MS;
    int inbox = workers_inbox_fd(worker_index, true);
    while (pending > 0) {
        struct pollfd p[WORKERS_MAX + 1];
        int who[WORKERS_MAX + 1], np = 0;
        for (int i = 0; i < worker_count; i++)
            if (fds[i] >= 0)
                p[np] = (struct pollfd){.fd = fds[i], .events = POLLIN}, who[np++] = i;
        p[np] = (struct pollfd){.fd = inbox, .events = POLLIN}, who[np++] = -1;
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(p, (nfds_t)np, left) < 0)
            break;
        for (int k = 0; k < np; k++) {
            if (!p[k].revents)
                continue;
            int i = who[k];
            if (i < 0) {
                while (handle_one(inbox))
                    ;
                continue;
            }
            if (cap[i] - len[i] < 4096) {
                size_t ncap = cap[i] ? cap[i] * 2 : 16384;
                char *nb = realloc(out[i], ncap);
                if (!nb)
                    goto drop;
                out[i] = nb, cap[i] = ncap;
            }
            ssize_t n = recv(fds[i], out[i] + len[i], cap[i] - len[i], 0);
            if (n > 0) {
                len[i] += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n == 0) { /* EOF: the whole answer */
                close(fds[i]);
                fds[i] = -1;
                pending--;
                continue;
            }
        drop:
            close(fds[i]);
            fds[i] = -1;
            free(out[i]);
            out[i] = NULL, len[i] = 0;
            pending--;
        }
    }
    for (int i = 0; i < worker_count; i++) {
        if (fds[i] < 0)
            continue;
        log_warn("worker %d did not answer within %d ms: its figures are left out", i, GATHER_TIMEOUT_MS);
        close(fds[i]);
        free(out[i]);
        out[i] = NULL, len[i] = 0;
    }
}
