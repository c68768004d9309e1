/* Unit tests for protocol/proxyproto.c: v1 TCP4/TCP6/UNKNOWN and v2 PROXY/LOCAL headers with TLVs,
 * every prefix of each (NEED_MORE, never a verdict early), bytes after the header left alone, and
 * the refusals: signatures, over-long v1 lines, addresses, ports, v2 version, command, family and
 * lying lengths. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/buf.h"
#include "protocol/proxyproto.h"

static const uint8_t v2_sig[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
/* A v3 StartupMessage head: what follows a header on the wire. */
static const uint8_t startup_head[] = {0x00, 0x00, 0x00, 0x29, 0x00, 0x03, 0x00, 0x00, 'u', 's', 'e', 'r'};

struct expect {
    bool local;
    int family;
    const char *addr;
    uint16_t port;
};

/* Every proper prefix is NEED_MORE; the whole header, alone or followed by a startup packet, is
 * DONE with header_len its own length and the expected source. */
static void check_valid(const uint8_t *hdr, size_t len, int version, struct expect e)
{
    uint8_t buf[1024];
    assert_true(len + sizeof startup_head <= sizeof buf);
    memcpy(buf, hdr, len);
    memcpy(buf + len, startup_head, sizeof startup_head);
    for (size_t k = 0; k < len; k++) {
        struct proxyproto_header h;
        const char *why = NULL;
        enum proxyproto_result r = proxyproto_parse(buf, k, &h, &why);
        if (r != PROXYPROTO_NEED_MORE)
            fail_msg("prefix of %zu of %zu bytes: result %d (%s)", k, len, r, why ? why : "");
    }
    for (int trailing = 0; trailing < 2; trailing++) {
        struct proxyproto_header h;
        const char *why = "";
        size_t avail = len + (trailing ? sizeof startup_head : 0);
        enum proxyproto_result r = proxyproto_parse(buf, avail, &h, &why);
        if (r != PROXYPROTO_DONE)
            fail_msg("whole header (%zu bytes): result %d (%s)", len, r, why);
        assert_int_equal(h.header_len, len);
        assert_int_equal(h.version, version);
        assert_int_equal(h.local, e.local);
        if (!e.local) {
            char text[INET6_ADDRSTRLEN];
            assert_int_equal(h.family, e.family);
            assert_non_null(inet_ntop(e.family == 4 ? AF_INET : AF_INET6, h.addr, text, sizeof text));
            assert_string_equal(text, e.addr);
            assert_int_equal(h.port, e.port);
        }
    }
}

static void check_v1_valid(const char *line, struct expect e)
{
    check_valid((const uint8_t *)line, strlen(line), 1, e);
}

static void test_v1_valid(void **state)
{
    check_v1_valid("PROXY TCP4 127.0.0.7 127.0.0.1 40123 6432\r\n", (struct expect){false, 4, "127.0.0.7", 40123});
    check_v1_valid("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", (struct expect){false, 4, "0.0.0.0", 0});
    check_v1_valid("PROXY TCP6 2001:db8::7 2001:db8::1 65535 6432\r\n",
                   (struct expect){false, 6, "2001:db8::7", 65535});
    check_v1_valid("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", (struct expect){false, 6, "::ffff:192.0.2.1", 1});
    check_v1_valid("PROXY UNKNOWN\r\n", (struct expect){.local = true});
    check_v1_valid("PROXY UNKNOWN 10.0.0.1 10.0.0.2 1 2\r\n", (struct expect){.local = true});
    /* The worst case of section 2.1, exactly 107 bytes. */
    const char *longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(longest), PROXYPROTO_V1_MAX);
    check_v1_valid(longest, (struct expect){.local = true});
}

/* A v2 header: signature, ver_cmd, fam, length, then body. */
static size_t v2_build(uint8_t *out, size_t cap, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
                       size_t body_len)
{
    struct pq_writer w;
    wr_init_fixed(&w, out, cap);
    wr_bytes(&w, v2_sig, sizeof v2_sig);
    wr_u8(&w, ver_cmd);
    wr_u8(&w, fam);
    wr_u16(&w, (uint16_t)body_len);
    wr_bytes(&w, body, body_len);
    assert_true(wr_ok(&w));
    return w.len;
}

/* Addresses (source, destination), ports, then TLVs as given. */
static size_t v2_inet_body(uint8_t *out, size_t cap, int af, const char *src, uint16_t sport, const uint8_t *tlvs,
                           size_t tlv_len)
{
    uint8_t a[16], d[16] = {0};
    size_t alen = af == AF_INET ? 4 : 16;
    assert_int_equal(inet_pton(af, src, a), 1);
    struct pq_writer w;
    wr_init_fixed(&w, out, cap);
    wr_bytes(&w, a, alen);
    wr_bytes(&w, d, alen);
    wr_u16(&w, sport);
    wr_u16(&w, 6432);
    wr_bytes(&w, tlvs, tlv_len);
    assert_true(wr_ok(&w));
    return w.len;
}

/* ALPN "pg", a NOOP of 3 bytes, a unique ID of 0 bytes: what HAProxy may add. */
static const uint8_t some_tlvs[] = {0x01, 0x00, 0x02, 'p', 'g', 0x04, 0x00, 0x03, 0, 0, 0, 0x05, 0x00, 0x00};

static void test_v2_valid(void **state)
{
    uint8_t body[256], hdr[512];
    size_t n = v2_inet_body(body, sizeof body, AF_INET, "127.0.0.7", 40123, NULL, 0);
    size_t len = v2_build(hdr, sizeof hdr, 0x21, 0x11, body, n);
    check_valid(hdr, len, 2, (struct expect){false, 4, "127.0.0.7", 40123});

    n = v2_inet_body(body, sizeof body, AF_INET, "10.1.2.3", 65535, some_tlvs, sizeof some_tlvs);
    len = v2_build(hdr, sizeof hdr, 0x21, 0x11, body, n);
    check_valid(hdr, len, 2, (struct expect){false, 4, "10.1.2.3", 65535});

    n = v2_inet_body(body, sizeof body, AF_INET6, "2001:db8::7", 1, some_tlvs, sizeof some_tlvs);
    len = v2_build(hdr, sizeof hdr, 0x21, 0x21, body, n);
    check_valid(hdr, len, 2, (struct expect){false, 6, "2001:db8::7", 1});

    /* LOCAL: a health check; the block, whatever it holds, is skipped. */
    len = v2_build(hdr, sizeof hdr, 0x20, 0x00, NULL, 0);
    check_valid(hdr, len, 2, (struct expect){.local = true});
    len = v2_build(hdr, sizeof hdr, 0x20, 0x11, body, n);
    check_valid(hdr, len, 2, (struct expect){.local = true});
    /* PROXY over AF_UNSPEC and AF_UNIX: no TCP source to use. */
    len = v2_build(hdr, sizeof hdr, 0x21, 0x00, some_tlvs, sizeof some_tlvs);
    check_valid(hdr, len, 2, (struct expect){.local = true});
    uint8_t unix_body[216 + 3] = {'/', 't', 'm', 'p', [216] = 0x04, 0x00, 0x00};
    len = v2_build(hdr, sizeof hdr, 0x21, 0x31, unix_body, sizeof unix_body);
    check_valid(hdr, len, 2, (struct expect){.local = true});
}

static void check_invalid(const uint8_t *p, size_t len, const char *why_part)
{
    struct proxyproto_header h = {.header_len = 12345};
    const char *why = NULL;
    enum proxyproto_result r = proxyproto_parse(p, len, &h, &why);
    if (r != PROXYPROTO_INVALID)
        fail_msg("%zu bytes \"%.*s\": result %d, expected INVALID", len, (int)len, (const char *)p, r);
    assert_non_null(why);
    if (!strstr(why, why_part))
        fail_msg("reason \"%s\" lacks \"%s\"", why, why_part);
    assert_int_equal(h.header_len, 12345); /* untouched */
}

static void test_v1_invalid(void **state)
{
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"PROXZ TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "not a PROXY"},
        {"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "not a PROXY"},
        {"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "protocol"},
        {"PROXY UNKNOWNX\r\n", "expected PROXY"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "expected PROXY"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "expected PROXY"},
        {"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "expected PROXY"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", "expected PROXY"},
        {"PROXY \r\n", "expected PROXY"},
        {"PROXY TCP4 256.2.3.4 1.2.3.4 1 2\r\n", "address"},
        {"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", "address"},
        {"PROXY TCP4 ::1 1.2.3.4 1 2\r\n", "address"},
        {"PROXY TCP4 1.2.3.4 localhost 1 2\r\n", "address"},
        {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "address"},
        {"PROXY TCP6 ::1 ::g 1 2\r\n", "address"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 99999\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1a 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 100000 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", "CR not followed"},
        {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "unexpected byte"},
        {"PROXY \x01garbage", "unexpected byte"},
        {"PROXY \xff\xfe", "unexpected byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_invalid((const uint8_t *)cases[i].line, strlen(cases[i].line), cases[i].why);
}

/* No CRLF by byte 107: refused there, waited for before. */
static void test_v1_too_long(void **state)
{
    char line[300] = "PROXY UNKNOWN ";
    memset(line + strlen(line), 'f', sizeof line - 1 - strlen(line));
    for (size_t k = 0; k < PROXYPROTO_V1_MAX - 1; k++) {
        struct proxyproto_header h;
        const char *why;
        assert_int_equal(proxyproto_parse((const uint8_t *)line, k, &h, &why), PROXYPROTO_NEED_MORE);
    }
    check_invalid((const uint8_t *)line, PROXYPROTO_V1_MAX - 1, "107 bytes");
    check_invalid((const uint8_t *)line, sizeof line - 1, "107 bytes");
    /* One byte over the worst case: the CRLF comes too late. */
    const char *over = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655355\r\n";
    check_invalid((const uint8_t *)over, strlen(over), "107 bytes");
}

static void test_v2_invalid(void **state)
{
    uint8_t body[256], hdr[512];
    size_t n = v2_inet_body(body, sizeof body, AF_INET, "127.0.0.7", 1, NULL, 0);
    size_t len;
    len = v2_build(hdr, sizeof hdr, 0x11, 0x11, body, n);
    check_invalid(hdr, len, "version");
    check_invalid(hdr, 16, "version"); /* known before the body arrives */
    len = v2_build(hdr, sizeof hdr, 0x22, 0x11, body, n);
    check_invalid(hdr, len, "command");
    len = v2_build(hdr, sizeof hdr, 0x21, 0x41, body, n);
    check_invalid(hdr, len, "family");
    len = v2_build(hdr, sizeof hdr, 0x21, 0x13, body, n);
    check_invalid(hdr, len, "family");
    len = v2_build(hdr, sizeof hdr, 0x21, 0x12, body, n);
    check_invalid(hdr, len, "not a stream");
    len = v2_build(hdr, sizeof hdr, 0x21, 0x10, body, n);
    check_invalid(hdr, len, "not a stream");
    len = v2_build(hdr, sizeof hdr, 0x21, 0x11, body, 8);
    check_invalid(hdr, len, "too short");
    check_invalid(hdr, 16, "too short");
    len = v2_build(hdr, sizeof hdr, 0x21, 0x21, body, n); /* 12 bytes: an IPv4 block, not IPv6 */
    check_invalid(hdr, len, "too short");
    len = v2_build(hdr, sizeof hdr, 0x21, 0x31, body, n);
    check_invalid(hdr, len, "too short");
    /* A TLV whose length goes past the block, and one cut in its own header. */
    static const uint8_t lying[] = {0x01, 0x00, 0x09, 'p', 'g'};
    n = v2_inet_body(body, sizeof body, AF_INET, "127.0.0.7", 1, lying, sizeof lying);
    len = v2_build(hdr, sizeof hdr, 0x21, 0x11, body, n);
    check_invalid(hdr, len, "TLV");
    static const uint8_t cut[] = {0x01, 0x00};
    n = v2_inet_body(body, sizeof body, AF_INET, "127.0.0.7", 1, cut, sizeof cut);
    len = v2_build(hdr, sizeof hdr, 0x21, 0x11, body, n);
    check_invalid(hdr, len, "TLV");
    /* A signature off by one byte anywhere. */
    for (size_t i = 0; i < sizeof v2_sig; i++) {
        len = v2_build(hdr, sizeof hdr, 0x21, 0x11, NULL, 0);
        hdr[i] ^= 0x40;
        check_invalid(hdr, len, "not a PROXY");
    }
}

static void test_looks_like(void **state)
{
    assert_int_equal(proxyproto_looks_like((const uint8_t *)"", 0), PROXYPROTO_MAYBE);
    assert_int_equal(proxyproto_looks_like((const uint8_t *)"PROX", 4), PROXYPROTO_MAYBE);
    assert_int_equal(proxyproto_looks_like((const uint8_t *)"PROXY", 5), PROXYPROTO_MAYBE);
    assert_int_equal(proxyproto_looks_like((const uint8_t *)"PROXY ", 6), PROXYPROTO_HEADER);
    assert_int_equal(proxyproto_looks_like((const uint8_t *)"PROXY garbage", 13), PROXYPROTO_HEADER);
    assert_int_equal(proxyproto_looks_like((const uint8_t *)"PROXYX", 6), PROXYPROTO_NOT_HEADER);
    assert_int_equal(proxyproto_looks_like((const uint8_t *)"GET /", 5), PROXYPROTO_NOT_HEADER);
    assert_int_equal(proxyproto_looks_like(v2_sig, 5), PROXYPROTO_MAYBE);
    assert_int_equal(proxyproto_looks_like(v2_sig, 11), PROXYPROTO_MAYBE);
    assert_int_equal(proxyproto_looks_like(v2_sig, 12), PROXYPROTO_HEADER);
    /* What clients send first is never taken for a header: a startup packet, an SSLRequest, a
     * CancelRequest all start with a zero length byte. */
    static const uint8_t ssl_request[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    for (size_t k = 1; k <= sizeof ssl_request; k++)
        assert_int_equal(proxyproto_looks_like(ssl_request, k), PROXYPROTO_NOT_HEADER);
    for (size_t k = 1; k <= sizeof startup_head; k++) {
        assert_int_equal(proxyproto_looks_like(startup_head, k), PROXYPROTO_NOT_HEADER);
        check_invalid(startup_head, k, "not a PROXY");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),    cmocka_unit_test(test_v2_valid),   cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v1_too_long), cmocka_unit_test(test_v2_invalid), cmocka_unit_test(test_looks_like),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
