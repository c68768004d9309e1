/* Unit tests for auth/keys.c: secret files (newline stripping, minimum length, PEM refused) and
 * PEM public keys (RSA, EC; private keys, small RSA and other key types refused). Keys are made
 * in-process with OpenSSL into a mkdtemp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <cmocka.h>

#include "auth/keys.h"

static char dir[64];
static char err[512];

static const char *path_in(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path_in(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *pkey, bool public_part, bool private_part)
{
    FILE *f = fopen(path_in(name), "w");
    assert_non_null(f);
    if (private_part)
        assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
    if (public_part)
        assert_int_equal(PEM_write_PUBKEY(f, pkey), 1);
    fclose(f);
}

static int setup(void **state)
{
    strcpy(dir, "/tmp/pgmesh-test-keys-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    if (rsa == NULL || small == NULL || ec == NULL || ed == NULL || ec384 == NULL || ec521 == NULL || k1 == NULL)
        return -1;
    write_key("rsa.pub", rsa, true, false);
    write_key("rsa.key", rsa, false, true);
    write_key("both.pem", rsa, true, true);
    write_key("small.pub", small, true, false);
    write_key("ec.pub", ec, true, false);
    write_key("ed.pub", ed, true, false);
    write_key("ec384.pub", ec384, true, false);
    write_key("ec521.pub", ec521, true, false);
    write_key("k1.pub", k1, true, false);
    /* A certificate block (its body is never parsed) in front of a good public key. */
    static const char *const certs[] = {"CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"};
    for (size_t i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "cert%zu.pem", i);
        FILE *f = fopen(path_in(name), "w");
        assert_non_null(f);
        fprintf(f, "-----BEGIN %s-----\nAAAA\n-----END %s-----\n", certs[i], certs[i]);
        assert_int_equal(PEM_write_PUBKEY(f, rsa), 1);
        fclose(f);
    }
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(ec521);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    write_text("s32", "0123456789abcdef0123456789abcdef\n");
    write_text("s32crlf", "0123456789abcdef0123456789abcdef\r\n\n");
    write_text("s31", "0123456789abcdef0123456789abcde\n");
    write_text("spem", "-----BEGIN PUBLIC KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    write_text("garbage.pub", "this is not a key at all, just some text\n");
    return 0;
}

static int teardown(void **state)
{
    static const char *files[] = {"rsa.pub",   "rsa.key", "both.pem",  "small.pub", "ec.pub",      "ed.pub",
                                  "s32",       "s32crlf", "s31",       "spem",      "garbage.pub", "ec384.pub",
                                  "ec521.pub", "k1.pub",  "cert0.pem", "cert1.pem", "cert2.pem"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(path_in(files[i]));
    rmdir(dir);
    return 0;
}

static struct jwt_keys *load_secret(const char *name)
{
    err[0] = '\0';
    return keys_load(path_in(name), NULL, err, sizeof(err));
}

static struct jwt_keys *load_pub(const char *name)
{
    err[0] = '\0';
    return keys_load("", path_in(name), err, sizeof(err));
}

static void test_secret(void **state)
{
    static const char *names[] = {"s32", "s32crlf"};
    for (size_t i = 0; i < 2; i++) {
        struct jwt_keys *k = load_secret(names[i]);
        assert_non_null(k);
        assert_int_equal(k->type, KEY_HMAC);
        assert_int_equal(k->material_len, 32);
        assert_memory_equal(k->material, "0123456789abcdef0123456789abcdef", 32);
        keys_free(k);
    }
    assert_null(load_secret("s31"));
    assert_non_null(strstr(err, "31 bytes"));
    assert_null(load_secret("spem"));
    assert_non_null(strstr(err, "PEM"));
    assert_null(load_secret("does-not-exist"));
    assert_non_null(strstr(err, "does-not-exist"));
}

static void test_public_keys(void **state)
{
    struct jwt_keys *k = load_pub("rsa.pub");
    assert_non_null(k);
    assert_int_equal(k->type, KEY_RSA);
    assert_true(strncmp((char *)k->material, "-----BEGIN PUBLIC KEY-----", 26) == 0);
    assert_int_equal(strlen((char *)k->material), k->material_len);
    keys_free(k);
    static const struct {
        const char *file;
        enum key_curve curve;
    } ec[] = {{"ec.pub", KEY_CURVE_P256}, {"ec384.pub", KEY_CURVE_P384}, {"ec521.pub", KEY_CURVE_P521}};
    for (size_t i = 0; i < sizeof(ec) / sizeof(ec[0]); i++) {
        k = load_pub(ec[i].file);
        assert_non_null(k);
        assert_int_equal(k->type, KEY_EC);
        assert_int_equal(k->curve, ec[i].curve);
        keys_free(k);
    }
}

static void test_refused_pem(void **state)
{
    static const struct {
        const char *file, *err_part;
    } cases[] = {
        {"rsa.key", "private key"},
        {"both.pem", "private key"},
        {"small.pub", "1024 bits"},
        {"ed.pub", "neither RSA nor EC"},
        {"garbage.pub", "no PEM public key"},
        {"s32", "no PEM public key"},
        {"k1.pub", "not on P-256, P-384 or P-521"},
        {"cert0.pem", "holds a certificate"},
        {"cert1.pem", "holds a certificate"},
        {"cert2.pem", "holds a certificate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_null(load_pub(cases[i].file));
        if (strstr(err, cases[i].err_part) == NULL)
            fail_msg("%s: err \"%s\" lacks \"%s\"", cases[i].file, err, cases[i].err_part);
    }
}

static void test_exactly_one_source(void **state)
{
    char buf[300];
    snprintf(buf, sizeof(buf), "%s", path_in("s32"));
    assert_null(keys_load(buf, path_in("rsa.pub"), err, sizeof(err)));
    assert_non_null(strstr(err, "exactly one"));
    assert_null(keys_load(NULL, NULL, err, sizeof(err)));
    assert_null(keys_load("", "", NULL, 0));
    keys_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_public_keys),
        cmocka_unit_test(test_refused_pem),
        cmocka_unit_test(test_exactly_one_source),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
