/* Server-side TLS for client connections: the process-wide SSL_CTX built from tls_cert_file,
 * tls_key_file, tls_ca_file and tls_ciphers, and its reload on SIGHUP. Owner: this module holds
 * the current context; every session's SSL holds its own reference, so a reload never disturbs
 * sessions already running. Does no socket I/O. */
#ifndef PGMESH_PROXY_TLS_H
#define PGMESH_PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct config;

/* At start-up: builds the context when a certificate is configured and client_tls is not
 * disable. Fails (err says why) on an unreadable or mismatched certificate and key, a bad cipher
 * list, or client_tls = require on a TCP listener without a certificate. */
bool tls_init(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* SIGHUP: builds a new context from the same settings and swaps it in; on failure the old one
 * stays and err says why. */
bool tls_reload(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* True when an SSLRequest can be answered 'S'. */
bool tls_available(void);
/* A new server-side session on fd from the current context, or NULL (out of memory). The caller
 * owns it (SSL_free). */
SSL *tls_session_new(int fd);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for logs. */
void tls_describe(const SSL *ssl, char *buf, size_t len);
/* Frees the current context (sessions keep theirs until they end). */
void tls_shutdown(void);

#endif
