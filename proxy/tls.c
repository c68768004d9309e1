/* OpenSSL server context for client connections and its reload. TLS 1.2 is the minimum; TLS 1.2
 * suites come from tls_ciphers, TLS 1.3 suites are OpenSSL's defaults. With tls_ca_file a client
 * certificate is requested and checked when one is sent, but never required. No sessions are
 * cached or resumed (as PostgreSQL). This module reads files only; sockets belong to conn.c. */
#include "proxy/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxy/log.h"

#include "proxy/config.h"

static SSL_CTX *g_ctx; /* current context; NULL: TLS not offered */

/* Appends OpenSSL's queued error reasons to err after what (which names the failing step). */
static void ssl_fail(char *err, size_t errlen, const char *what, const char *path)
{
    int n = snprintf(err, errlen, "%s%s%s", what, path ? " " : "", path ? path : "");
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (n < 0 || (size_t)n >= errlen)
            continue; /* drain the queue anyway */
        char reason[256];
        ERR_error_string_n(e, reason, sizeof reason);
        n += snprintf(err + n, errlen - (size_t)n, ": %s", reason);
    }
}

/* Serial from the clock, valid from a minute ago (clock skew) for a year. */
static bool set_validity(X509 *x)
{
    return ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(time(NULL) & 0x7fffffff)) &&
           X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
           X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
}

/* Subject and issuer are the same name: the certificate signs itself. */
static bool set_self_names(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    return name &&
           X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"pgmesh (self-signed)", -1,
                                      -1, 0) &&
           X509_set_issuer_name(x, name);
}

/* A v3 certificate for key, signed by key; NULL on failure. */
static X509 *self_signed_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (x && X509_set_version(x, 2) && set_validity(x) && X509_set_pubkey(x, key) && set_self_names(x) &&
        X509_sign(x, key, EVP_sha256()) > 0)
        return x;
    X509_free(x);
    return NULL;
}

/* Without tls_cert_file, client_tls = require (the default) still encrypts: a P-256 key and a
 * self-signed certificate made at start, good for sslmode=require (which does not verify) but
 * not for verify-ca or verify-full. Nothing is written to disk. */
static bool use_ephemeral_cert(SSL_CTX *ctx)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = key ? self_signed_cert(key) : NULL;
    bool ok = x && SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

/* Versions, options, modes and tls_ciphers; false with err set. */
static bool set_protocol(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        ssl_fail(err, errlen, "cannot set TLS 1.2 as the minimum version", NULL);
        return false;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* conn.c retries a write with the out buffer's current head, which may have moved or grown. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_dh_auto(ctx, 1);
    if (cfg->tls_ciphers[0] && !SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers)) {
        ssl_fail(err, errlen, "tls_ciphers selects no usable cipher:", cfg->tls_ciphers);
        return false;
    }
    return true;
}

/* tls_cert_file and tls_key_file, which must match; false with err set. */
static bool load_cert_files(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        ssl_fail(err, errlen, "cannot load tls_cert_file", cfg->tls_cert_file);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_fail(err, errlen, "cannot load tls_key_file", cfg->tls_key_file);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_fail(err, errlen, "tls_key_file does not match tls_cert_file", NULL);
        return false;
    }
    return true;
}

/* With tls_ca_file, a client certificate is requested and checked when sent (never required). */
static bool load_client_ca(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    if (!cfg->tls_ca_file[0])
        return true;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca_file);
    if (!names || SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        ssl_fail(err, errlen, "cannot load tls_ca_file", cfg->tls_ca_file);
        return false;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return true;
}

/* The configured certificate and client CAs, else a self-signed one; tls_ca_file is read only
 * together with tls_cert_file. */
static bool set_certificate(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->tls_cert_file[0])
        return load_cert_files(ctx, cfg, err, errlen) && load_client_ca(ctx, cfg, err, errlen);
    if (use_ephemeral_cert(ctx))
        return true;
    ssl_fail(err, errlen, "cannot make a self-signed certificate", NULL);
    return false;
}

/* Builds a context from cfg; NULL with err set on any failure. */
static SSL_CTX *build_ctx(const struct config *cfg, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_fail(err, errlen, "cannot create a TLS context", NULL);
        return NULL;
    }
    if (!set_protocol(ctx, cfg, err, errlen) || !set_certificate(ctx, cfg, err, errlen)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static bool wants_ctx(const struct config *cfg)
{
    return cfg->client_tls != CLIENT_TLS_DISABLE;
}

/* Builds a context and makes it current. Sessions made from the old one hold a reference to it
 * (SSL_new): it lives on until the last of them ends. */
static bool install(const struct config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = build_ctx(cfg, err, errlen);
    if (!ctx)
        return false;
    SSL_CTX_free(g_ctx);
    g_ctx = ctx;
    return true;
}

bool tls_init(const struct config *cfg, char *err, size_t errlen)
{
    if (!wants_ctx(cfg))
        return true;
    if (!cfg->tls_cert_file[0] && cfg->listen_addr[0])
        log_warn("no tls_cert_file: TCP clients get a self-signed certificate made at start "
                 "(sslmode=require works, verify-full does not); set tls_cert_file and tls_key_file");
    return install(cfg, err, errlen);
}

bool tls_reload(const struct config *cfg, char *err, size_t errlen)
{
    if (!wants_ctx(cfg) || !cfg->tls_cert_file[0]) {
        snprintf(err, errlen, "no tls_cert_file to re-read");
        return false;
    }
    return install(cfg, err, errlen);
}

bool tls_available(void)
{
    return g_ctx != NULL;
}

SSL *tls_session_new(int fd)
{
    if (!g_ctx)
        return NULL;
    SSL *ssl = SSL_new(g_ctx);
    if (!ssl)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

void tls_describe(const SSL *ssl, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

void tls_shutdown(void)
{
    SSL_CTX_free(g_ctx);
    g_ctx = NULL;
}
