/* Configuration: INI sections [pgmesh], [jwt], [databases], [roles], read with libinih. The
 * [pgmesh] and [jwt] keys are described by one table (config_keys.h), a [roles] value by roles.h.
 * A loaded config is immutable; a reload parses a new one and swaps it whole.
 * Owner: config_load's caller frees with config_free. */
#ifndef PGMESH_PROXY_CONFIG_H
#define PGMESH_PROXY_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proxy/cidr.h"
#include "proxy/log.h"

/* PostgreSQL identifiers (role and database names) are at most NAMEDATALEN - 1 bytes. */
#define PG_NAME_MAX 63

enum pool_mode { POOL_TRANSACTION, POOL_SESSION };
/* client_tls: what a TCP client's SSLRequest gets and whether clear text is refused. */
enum client_tls_mode { CLIENT_TLS_DISABLE, CLIENT_TLS_ALLOW, CLIENT_TLS_REQUIRE };
/* server_enforcement: whether claims and limits must be set through the pgmesh extension. */
enum server_enforcement { ENFORCE_OFF, ENFORCE_PREFER, ENFORCE_REQUIRE };

/* [databases] name = libpq conninfo (no user). */
struct db_config {
    char *name;
    char *conninfo;
};

/* A [roles] pin.<setting>=<value>: set on every transaction with the role's limits and, like
 * them, refused to clients (the guard; the extension's ceilings where pgmesh.pinned_settings lists
 * it). */
struct role_pin {
    char *name;  /* lower case letters, digits, '_' and at most one '.'; never a managed setting */
    char *value; /* as written in the file, non-empty; PostgreSQL judges it */
};
/* Pins per role. The extension keeps ceilings for at most 16 settings per server connection,
 * statement_timeout and work_mem among them. */
#define ROLE_PINS_MAX 14

/* [roles] jwt_role = server_user=... statement_timeout=30s work_mem=128MB pin.name=value ... */
struct role_config {
    char *name;                             /* the token's role claim */
    char *server_user;                      /* login role on the server */
    int64_t statement_timeout_ms;           /* 0: not set by pgmesh */
    int64_t work_mem_kb;                    /* 0: not set by pgmesh */
    int64_t idle_in_transaction_timeout_ms; /* 0: no limit; enforced by pgmesh */
    int64_t max_transaction_age_ms;         /* 0: no limit; enforced by pgmesh */
    int max_client_conn;                    /* clients of this role at once; 0: no limit */
    struct role_pin pins[ROLE_PINS_MAX];    /* in file order */
    size_t npins;
};

struct config {
    char *path;
    /* [pgmesh] */
    char *listen_addr; /* "" disables TCP; "*" means all IPv4 and IPv6 addresses */
    int listen_port;
    char *unix_socket_dir; /* "" disables */
    enum pool_mode pool_mode;
    int default_pool_size;
    int max_client_conn;
    int max_client_conn_per_tenant; /* 0: no limit */
    char *workers_spec;             /* "auto" or a number, as written */
    int workers;                    /* worker processes (workers.h), from workers_spec */
    int peer_id;                    /* this instance among its peers (peers.h); 0: no peering */
    char *peers;                    /* "id=host:port, ..." of the other instances; "": none */
    int64_t client_login_timeout_ms;
    char *metrics_listen; /* "" when off */
    int claim_affinity_passes;
    int64_t query_wait_timeout_ms;
    int64_t idle_transaction_timeout_ms; /* 0: no limit; a role's idle_in_transaction_timeout wins */
    int64_t server_idle_timeout_ms;
    int64_t server_connect_timeout_ms;
    int64_t server_login_retry_ms; /* no server login attempt for this long after one failed */
    int64_t shutdown_timeout_ms;   /* SIGTERM/SIGINT: how long transactions in progress may run on */
    int max_prepared_statements;   /* per server connection in transaction pooling; 0: refused */
    char *log_level;               /* error, warning, info, debug */
    enum log_format log_format;
    enum client_tls_mode client_tls;
    enum server_enforcement server_enforcement;
    char *server_key_file; /* the key shared with the extension ("" : none) */
    char *tls_cert_file;   /* "" : no certificate, TLS not offered */
    char *tls_key_file;
    char *tls_ca_file;              /* "" : client certificates not requested */
    char *tls_ciphers;              /* TLS 1.2 cipher list; "" : OpenSSL's default */
    int64_t watch_interval_ms;      /* replication slot polls (watch.c); 0: none */
    int64_t slot_wal_warn_kb;       /* a slot retaining more WAL is logged */
    char *watch_user;               /* "" : the first role's server_user */
    char *admin_roles;              /* comma-separated token roles that may use the admin console; "": none */
    char *admin_users;              /* comma-separated OS users that may over the Unix socket; "": none */
    int proxy_protocol;             /* 0 off, 1 on: TCP clients may start with a PROXY header */
    char *proxy_protocol_trusted;   /* comma-separated CIDRs, as written */
    struct cidr_list proxy_trusted; /* parsed from proxy_protocol_trusted at load */
    /* [jwt] */
    char *algorithms;
    unsigned alg_mask; /* parsed from algorithms */
    char *secret_file;
    char *public_key_file;
    char *issuer;
    char *audience;
    int64_t leeway_s;
    char *tenant_claim;
    char *role_claim;
    char *jwks_file;      /* JWKS of RSA/EC public keys chosen by kid */
    char *tenant_pattern; /* POSIX ERE the tenant and role claims must match whole */
    regex_t tenant_regex; /* tenant_pattern compiled at load (REG_EXTENDED); freed by config_free */
    bool tenant_regex_set;
    int claims_json;       /* 0 off, 1 on: pass the claim set as request.jwt.claims */
    int verify_cache_size; /* verified-token cache entries; 0 disables the cache */
    /* [databases], [roles] in file order */
    struct db_config *databases;
    size_t ndatabases;
    struct role_config *roles;
    size_t nroles;
    /* Every role's pinned setting names, each once: the guard refuses them to every client. The
     * strings belong to the roles' pins. */
    const char **pinned;
    size_t npinned;
};

/* Parses and validates the whole file. Relative secret_file / public_key_file paths are resolved
 * against the current directory. On failure returns NULL and writes "file:line: what" to err. */
struct config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct config *cfg);

const struct db_config *config_find_database(const struct config *cfg, const char *name);
const struct role_config *config_find_role(const struct config *cfg, const char *name);

#endif
