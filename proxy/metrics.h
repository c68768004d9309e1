/* Prometheus metrics and orchestrator probes over HTTP on metrics_listen: GET /metrics (text
 * exposition format 0.0.4), /healthz (the process answers) and /readyz (it accepts clients: 503
 * while shutting down). The counters and histograms live here; the gauges are read from the pools
 * and clients at scrape time. */
#ifndef PGMESH_PROXY_METRICS_H
#define PGMESH_PROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/opq.h"

struct metrics_role;

/* Opens the listener when metrics_listen is set (restart to change). False with a log line when
 * the address cannot be used. */
bool metrics_start(void);
void metrics_stop(void);

/* The histograms' row of a role (at login and reload): at most METRICS_ROLES roles have their own,
 * the rest share "other". Never NULL; rows live until exit. */
#define METRICS_ROLES 64
struct metrics_role *metrics_role(const char *role);
/* How long a client waited for a server (0 when one was idle), and how long the server was its. */
void metrics_wait_observed(struct metrics_role *r, double seconds);
void metrics_link_observed(struct metrics_role *r, double seconds);

void metrics_refused(enum refusal why);
/* A login refused; reason is one of a fixed set of constant strings (a label value). */
void metrics_login_refused(const char *reason);

/* The exposition text of the current state into a malloc'd buffer (tests, the HTTP handler). */
char *metrics_render(size_t *len);
/* With workers: every worker's figures added up (metrics_merge.c); metrics_render with one. */
char *metrics_render_all(size_t *len);

#endif
