/* Graceful and immediate shutdown (see shutdown.h). Two timers: the deadline (shutdown_timeout)
 * and a poll that ends clients as their transactions end and stops the loop when none is left. */
#include "proxy/shutdown.h"

#include <ev.h>

#include "proxy/config.h"
#include "proxy/link.h"
#include "proxy/listen.h"
#include "proxy/log.h"
#include "proxy/runtime.h"

static ev_timer shutdown_deadline, shutdown_poll;

static void shutdown_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    log_warn("shutdown_timeout expired: stopping with %d client connection(s) open", rt.nclients);
    ev_break(loop, EVBREAK_ALL);
}

static void shutdown_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    link_shutdown_sweep();
    if (rt.nclients == 0) {
        log_info("no client connection left: stopping");
        ev_break(loop, EVBREAK_ALL);
    }
}

void shutdown_now(const char *cause)
{
    log_info("%s: stopping now with %d client connection(s) open", cause, rt.nclients);
    ev_break(rt.loop, EVBREAK_ALL);
}

void shutdown_begin(const char *cause)
{
    if (rt.shutting_down) {
        log_info("%s again: stopping now with %d client connection(s) open", cause, rt.nclients);
        ev_break(rt.loop, EVBREAK_ALL);
        return;
    }
    rt.shutting_down = true;
    listen_stop();
    double timeout_s = (double)rt.cfg->shutdown_timeout_ms / 1000.0;
    log_info("%s: shutting down; not accepting, transactions in progress may finish within shutdown_timeout "
             "(%.3g s), a second signal stops at once",
             cause, timeout_s);
    if (timeout_s <= 0) {
        ev_break(rt.loop, EVBREAK_ALL);
        return;
    }
    ev_timer_init(&shutdown_deadline, shutdown_deadline_cb, timeout_s, 0.);
    ev_timer_start(rt.loop, &shutdown_deadline);
    ev_timer_init(&shutdown_poll, shutdown_poll_cb, 0., 0.1);
    ev_timer_start(rt.loop, &shutdown_poll);
}
