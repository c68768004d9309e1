/* Unit tests for proxy/cidr.c: lists as proxy_protocol_trusted takes them, matching IPv4, IPv6 and
 * IPv4-mapped IPv6 peers at prefix boundaries, and the refusals. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/cidr.h"

static bool match(const struct cidr_list *l, const char *addr)
{
    struct sockaddr_storage ss = {0};
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
    }
    return cidr_list_match(l, (const struct sockaddr *)&ss);
}

static void test_parse_and_match(void **state)
{
    struct cidr_list l;
    char err[200] = "";
    assert_true(cidr_list_parse("127.0.0.1/32, ::1/128,10.0.0.0/8 ,  192.168.1.128/25, 2001:db8::/33, 127.0.0.2",
                                &l, err, sizeof err));
    assert_int_equal(l.n, 6);
    static const struct {
        const char *addr;
        bool in;
    } cases[] = {
        {"127.0.0.1", true},
        {"127.0.0.2", true},
        {"127.0.0.3", false},
        {"::1", true},
        {"::2", false},
        {"10.0.0.0", true},
        {"10.255.255.255", true},
        {"11.0.0.0", false},
        {"9.255.255.255", false},
        {"192.168.1.128", true},
        {"192.168.1.255", true},
        {"192.168.1.127", false},
        {"2001:db8::1", true},
        {"2001:db8:7fff::1", true},
        {"2001:db8:8000::1", false},
        {"::ffff:10.1.2.3", true},
        {"::ffff:11.1.2.3", false},
        {"::ffff:127.0.0.1", true},
        {"::10.1.2.3", false}, /* IPv4-compatible, not mapped: an IPv6 address */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (match(&l, cases[i].addr) != cases[i].in)
            fail_msg("%s: expected %s", cases[i].addr, cases[i].in ? "a match" : "no match");

    assert_true(cidr_list_parse("0.0.0.0/0", &l, err, sizeof err));
    assert_true(match(&l, "203.0.113.9"));
    assert_false(match(&l, "2001:db8::1"));
    assert_true(cidr_list_parse("::/0", &l, err, sizeof err));
    assert_true(match(&l, "2001:db8::1"));
    /* Empty: nothing is trusted. */
    assert_true(cidr_list_parse("", &l, err, sizeof err));
    assert_int_equal(l.n, 0);
    assert_false(match(&l, "127.0.0.1"));
    assert_true(cidr_list_parse("   ", &l, err, sizeof err));
    assert_int_equal(l.n, 0);
}

static void test_refusals(void **state)
{
    static const char *const bad[] = {
        "127.0.0.1/33", "::1/129",    "10.0.0.0/",    "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0/8",
        "localhost",    "10.1.0.0/8", "::1/0",        "1.2.3.4,",    ",1.2.3.4",    "1.2.3.4,,::1",
        "1.2.3.4 ::1",  "/8",         "1.2.3.4/0008", "fe80::1%lo",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cidr_list l = {.n = 99};
        char err[200] = "";
        if (cidr_list_parse(bad[i], &l, err, sizeof err))
            fail_msg("\"%s\" parsed", bad[i]);
        assert_int_equal(l.n, 99);
        assert_true(err[0] != '\0');
    }
    /* At most CIDR_LIST_MAX entries. */
    char many[40 * (CIDR_LIST_MAX + 1)] = "";
    for (int i = 0; i <= CIDR_LIST_MAX; i++) {
        char one[32];
        snprintf(one, sizeof one, "%s10.0.%d.0/24", i ? "," : "", i);
        strcat(many, one);
    }
    struct cidr_list l;
    char err[200] = "";
    assert_false(cidr_list_parse(many, &l, err, sizeof err));
    assert_non_null(strstr(err, "more than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_match),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
