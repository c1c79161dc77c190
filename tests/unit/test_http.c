/*
 * test_http.c - the HTTP/1.x request head parser (http.h): a table of heads
 * with the status each must get, every one also fed cut at every byte
 * (need-more until the last byte, then the same answer), pipelined heads,
 * the 8 KiB bound and the resumable scan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct head_case {
    const char *in;
    enum http_parse_status want;
    int error;                 /* HTTP_INVALID: the status */
    enum http_method method;   /* HTTP_DONE: what was read */
    const char *path;
    bool keep_alive, has_body;
};

#define OK(in, m, path, ka, body) {in, HTTP_DONE, 0, m, path, ka, body}
#define BAD(in, st) {in, HTTP_INVALID, st, HTTP_GET, NULL, false, false}

static const struct head_case cases[] = {
    OK("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_GET, "/metrics", true, false),
    OK("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_HEAD, "/metrics", true, false),
    OK("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_GET, "/metrics", true, false),
    OK("GET /metrics#frag HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_GET, "/metrics", true, false),
    OK("GET / HTTP/1.1\nHost: a\n\n", HTTP_GET, "/", true, false),       /* bare LFs */
    OK("GET / HTTP/1.0\r\n\r\n", HTTP_GET, "/", false, false),            /* 1.0: no Host needed */
    OK("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", HTTP_GET, "/", true, false),
    OK("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", HTTP_GET, "/", false, false),
    OK("GET / HTTP/1.1\r\nhOsT:a\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", HTTP_GET, "/",
       false, false),
    OK("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", HTTP_GET, "/", true, false),
    OK("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", HTTP_OTHER,
       "/metrics", false, true),
    OK("PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_OTHER, "/x",
       false, true),
    OK("GET / HTTP/1.1\r\nHost: a\r\nX-Long:  spaces\t and \x80 obs-text \t\r\n\r\n", HTTP_GET,
       "/", true, false),
    OK("GET / HTTP/1.9\r\nHost: a\r\n\r\n", HTTP_GET, "/", true, false),
    OK("get / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_OTHER, "/", true, false), /* case-sensitive */
    BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    BAD("GET / HTTP/0.9\r\n\r\n", 505),
    BAD("GET / HTTP/1.1\r\n\r\n", 400),                       /* no Host */
    BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    BAD("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    BAD("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET /\r\n\r\n", 400),
    BAD(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),           /* blank before the colon */
    BAD("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400),         /* bare CR */
    BAD("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
    BAD("GE\x7fT / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("\x16\x03\x01\x02\x05\x01\x05\x01\xfc\x03\x03\n\n", 400), /* a TLS hello */
    BAD("\r\n\r\n", 400),
};

static enum http_parse_status parse_all(const char *in, size_t len, struct http_request *rq)
{
    size_t scan = 0;
    return http_parse(in, len, HTTP_MAX_HEAD, &scan, rq);
}

static void check_case(const struct head_case *c, const struct http_request *rq,
                       enum http_parse_status st)
{
    if (st != c->want) fail_msg("%s: status %d, want %d", c->in, st, c->want);
    if (st == HTTP_INVALID) {
        assert_int_equal(rq->error, c->error);
        return;
    }
    assert_int_equal(rq->head_len, strlen(c->in));
    assert_int_equal(rq->method, c->method);
    assert_int_equal(rq->path_len, strlen(c->path));
    assert_memory_equal(rq->path, c->path, rq->path_len);
    if (rq->keep_alive != c->keep_alive) fail_msg("%s: keep_alive %d", c->in, rq->keep_alive);
    assert_int_equal(rq->has_body, c->has_body);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_request rq;
        check_case(&cases[i], &rq, parse_all(cases[i].in, strlen(cases[i].in), &rq));
    }
}

/* Every head cut at every byte, fed as it grows with one scan memory: need
 * more until the blank line is complete (an invalid head may be found out
 * early, never late), then the same answer as whole. */
static void test_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct head_case *c = &cases[i];
        size_t len = strlen(c->in), scan = 0;
        char *buf = malloc(len);
        memcpy(buf, c->in, len); /* no NUL after the bytes: the parser must not look */
        struct http_request rq;
        enum http_parse_status st = HTTP_NEED_MORE;
        size_t cut;
        for (cut = 0; cut <= len && st == HTTP_NEED_MORE; cut++)
            st = http_parse(buf, cut, HTTP_MAX_HEAD, &scan, &rq);
        if (c->want == HTTP_DONE) assert_int_equal(cut, len + 1);
        check_case(c, &rq, st);
        free(buf);
    }
}

static void test_pipelined(void **state)
{
    (void)state;
    const char *in = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nHEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /y HTTP/1.1\r\nHost: a\r\n";
    size_t len = strlen(in), off = 0;
    struct http_request rq;
    assert_int_equal(parse_all(in, len, &rq), HTTP_DONE);
    assert_int_equal(rq.method, HTTP_GET);
    off += rq.head_len;
    assert_int_equal(parse_all(in + off, len - off, &rq), HTTP_DONE);
    assert_int_equal(rq.method, HTTP_HEAD);
    assert_memory_equal(rq.path, "/x", 2);
    off += rq.head_len;
    assert_int_equal(parse_all(in + off, len - off, &rq), HTTP_NEED_MORE);
}

static void test_limits(void **state)
{
    (void)state;
    size_t big = HTTP_MAX_HEAD + 100;
    char *buf = malloc(big);
    int n = snprintf(buf, big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'a', big - (size_t)n);
    struct http_request rq;
    /* under the bound: need more; at it: 431 */
    assert_int_equal(parse_all(buf, HTTP_MAX_HEAD - 1, &rq), HTTP_NEED_MORE);
    assert_int_equal(parse_all(buf, HTTP_MAX_HEAD, &rq), HTTP_INVALID);
    assert_int_equal(rq.error, 431);
    assert_int_equal(parse_all(buf, big, &rq), HTTP_INVALID);
    /* a complete head just over the bound is refused too */
    size_t len = HTTP_MAX_HEAD + 4;
    memcpy(buf + len - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_all(buf, len, &rq), HTTP_INVALID);
    assert_int_equal(rq.error, 431);
    /* exactly at the bound is fine */
    memcpy(buf + HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_all(buf, HTTP_MAX_HEAD, &rq), HTTP_DONE);
    assert_int_equal(rq.head_len, HTTP_MAX_HEAD);
    free(buf);
}

static void test_scan_resumes(void **state)
{
    (void)state;
    const char *in = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = strlen(in), scan = 0;
    struct http_request rq;
    assert_int_equal(http_parse(in, len - 1, HTTP_MAX_HEAD, &scan, &rq), HTTP_NEED_MORE);
    assert_int_equal(scan, len - 1);
    assert_int_equal(http_parse(in, len, HTTP_MAX_HEAD, &scan, &rq), HTTP_DONE);
    assert_int_equal(rq.head_len, len);
}

static void test_blank_lines(void **state)
{
    (void)state;
    assert_int_equal(http_skip_blank_lines("\r\n\nGET", 6), 3);
    assert_int_equal(http_skip_blank_lines("\r", 1), 0); /* maybe the start of CRLF */
    assert_int_equal(http_skip_blank_lines("\rX", 2), 0);
    assert_int_equal(http_skip_blank_lines("GET", 3), 0);
    assert_string_equal(http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_reason(404), "Not Found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_scan_resumes),
        cmocka_unit_test(test_blank_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
