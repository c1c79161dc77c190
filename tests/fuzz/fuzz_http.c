/*
 * fuzz_http.c - libFuzzer target for the HTTP request head parser
 * (src/http.c), as the metrics port feeds it.
 *
 * One input = the bytes of one connection, copied into a heap buffer of
 * exactly their size (ASan sees any read past the end). Properties checked
 * (a violation aborts):
 *  1. The parser stays in bounds, and what it returns is consistent: a
 *     complete head is at most HTTP_MAX_HEAD bytes and inside the input,
 *     its path lies inside the request line, an invalid head names one of
 *     400, 431 or 505, and need-more only for less than HTTP_MAX_HEAD bytes.
 *  2. Split delivery decides the same: the input fed as a growing prefix,
 *     with one scan memory, answers need-more until the prefix that the
 *     whole input's answer needs, then that same answer.
 *  3. The connection loop terminates: blank lines skipped, each complete
 *     head consumed, as metrics.c does, until need-more or invalid.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *in, size_t len, enum http_parse_status st,
                  const struct http_request *rq)
{
    switch (st) {
    case HTTP_DONE:
        if (rq->head_len == 0 || rq->head_len > len || rq->head_len > HTTP_MAX_HEAD) abort();
        if (!rq->path || rq->path < in || rq->path + rq->path_len > in + rq->head_len) abort();
        if (rq->keep_alive && rq->has_body) abort();
        break;
    case HTTP_NEED_MORE:
        if (len >= HTTP_MAX_HEAD) abort();
        break;
    case HTTP_INVALID:
        if (rq->error != 400 && rq->error != 431 && rq->error != 505) abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    /* 1 */
    struct http_request whole, part;
    size_t scan = 0;
    enum http_parse_status st = http_parse(in, size, HTTP_MAX_HEAD, &scan, &whole);
    check(in, size, st, &whole);
    /* 2: the answer needs the whole head (done) or max_head bytes (431);
     * an invalid head found on the way is found at its blank line */
    size_t need = st == HTTP_DONE ? whole.head_len : size;
    scan = 0;
    for (size_t cut = 0; cut <= size && size <= 4 * HTTP_MAX_HEAD; cut++) {
        enum http_parse_status s = http_parse(in, cut, HTTP_MAX_HEAD, &scan, &part);
        check(in, cut, s, &part);
        if (s == HTTP_NEED_MORE) {
            if (cut >= need && st == HTTP_DONE) abort();
            continue;
        }
        if (s != st) abort();
        if (s == HTTP_DONE && (part.head_len != whole.head_len || part.method != whole.method ||
                               part.path_len != whole.path_len || part.minor != whole.minor ||
                               part.keep_alive != whole.keep_alive))
            abort();
        if (s == HTTP_INVALID && part.error != whole.error) abort();
        break;
    }
    /* 3 */
    size_t pos = 0;
    for (;;) {
        pos += http_skip_blank_lines(in + pos, size - pos);
        scan = 0;
        if (http_parse(in + pos, size - pos, HTTP_MAX_HEAD, &scan, &part) != HTTP_DONE) break;
        pos += part.head_len;
    }
    if (pos > size) abort();
    free(in);
    return 0;
}
