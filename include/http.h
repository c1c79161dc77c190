/*
 * http.h - the request head of HTTP/1.0 and HTTP/1.1 (RFC 9112), for the
 * one route of --metrics_port (metrics.c).
 *
 * Owns: the grammar only. Pure: it reads bytes, returns complete /
 * need-more / invalid, and never touches a socket. What it accepts:
 *
 *   head    := request-line header* CRLF
 *   request-line := method SP target SP "HTTP/1." digit CRLF
 *   header  := name ":" OWS value OWS CRLF
 *
 * where a bare LF may stand for CRLF (RFC 9112 2.2); names and methods are
 * tokens; values are visible ASCII, blanks and obs-text; line folding, NUL
 * and other control bytes are refused. Of the headers it reads Host
 * (required by HTTP/1.1), Connection (close, keep-alive),
 * Content-Length and Transfer-Encoding (a request that has a body: the
 * responder answers it and closes, rather than read what it does not need).
 */
#ifndef VITAMIN_HTTP_H
#define VITAMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEAD 8192 /* bytes of a request head (line and headers) */

enum http_parse_status {
    HTTP_DONE = 0,   /* a complete head: req filled */
    HTTP_NEED_MORE,  /* no blank line yet */
    HTTP_INVALID,    /* req->error is the status to answer, then close */
};

enum http_method { HTTP_GET = 0, HTTP_HEAD, HTTP_OTHER };

struct http_request {
    size_t head_len;          /* bytes of the head, its blank line included */
    enum http_method method;
    const char *path;         /* the target up to '?' or '#' (inside the input) */
    size_t path_len;
    unsigned minor;           /* HTTP/1.<minor> */
    bool keep_alive;          /* the connection stays open after the reply */
    bool has_body;            /* Content-Length > 0 or Transfer-Encoding */
    int error;                /* HTTP_INVALID: 400, 431 (head too long) or 505 */
};

/*
 * Parse the head at the front of in[0..len). *scan is the caller's memory
 * of how many bytes are known to hold no end of head (0 for a new request;
 * updated on HTTP_NEED_MORE), so a head that arrives byte by byte is
 * searched once. A head longer than max_head is HTTP_INVALID with 431.
 */
enum http_parse_status http_parse(const char *in, size_t len, size_t max_head, size_t *scan,
                                  struct http_request *req);

/* Bytes of the empty lines (CRLF or LF) at the front of in, which a
 * server ignores before a request line (RFC 9112 2.2); the caller drops
 * them before http_parse. */
size_t http_skip_blank_lines(const char *in, size_t len);

/* The reason phrase of a status this module or metrics.c answers. */
const char *http_reason(int status);

#endif
