/*
 * http.c - the HTTP/1.x request head parser (see http.h).
 *
 * Two passes over bytes the caller holds: find the blank line that ends the
 * head (resumable: *scan), then walk its lines once. Nothing is copied;
 * path points into the input.
 */
#include "http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte of a field value: visible ASCII, blanks, obs-text. */
static bool is_vchar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* Where the head ends: the byte after the LF of its blank line, or 0. */
static size_t head_end(const char *in, size_t len, size_t *scan)
{
    size_t i = *scan;
    while (i < len) {
        const char *nl = memchr(in + i, '\n', len - i);
        if (!nl) break;
        i = (size_t)(nl - in);
        if (i >= 1 && in[i - 1] == '\n') return i + 1;
        if (i >= 2 && in[i - 1] == '\r' && in[i - 2] == '\n') return i + 1;
        i++;
    }
    *scan = len;
    return 0;
}

static enum http_parse_status invalid(struct http_request *req, int status)
{
    req->error = status;
    return HTTP_INVALID;
}

/* "HTTP/1.x" (x a digit) -> 0 and *minor; another "HTTP/d.d" -> 505;
 * anything else -> 400. */
static int parse_version(const char *p, size_t n, unsigned *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
        p[7] < '0' || p[7] > '9')
        return 400;
    if (p[5] != '1') return 505;
    *minor = (unsigned)(p[7] - '0');
    return 0;
}

static int parse_request_line(const char *p, size_t n, struct http_request *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i])) i++;
    if (i == 0 || i == n || p[i] != ' ') return 400;
    if (i == 3 && !memcmp(p, "GET", 3)) req->method = HTTP_GET;
    else if (i == 4 && !memcmp(p, "HEAD", 4)) req->method = HTTP_HEAD;
    else req->method = HTTP_OTHER;
    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f) i++;
    if (i == t || i == n || p[i] != ' ') return 400;
    req->path = p + t;
    req->path_len = i - t;
    const char *q = memchr(req->path, '?', req->path_len);
    if (!q) q = memchr(req->path, '#', req->path_len);
    if (q) req->path_len = (size_t)(q - req->path);
    i++;
    return parse_version(p + i, n - i, &req->minor);
}

static bool name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* Connection: a comma-separated list of tokens. */
static void parse_connection(const char *v, size_t n, bool *close, bool *keep)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t') i++;
        if (name_is(v + s, i - s, "close")) *close = true;
        else if (name_is(v + s, i - s, "keep-alive")) *keep = true;
    }
}

struct head_fields {
    unsigned hosts;
    bool close, keep;
};

/* One header line. Returns 0 or the status to answer. */
static int parse_header(const char *p, size_t n, struct head_fields *f, struct http_request *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i])) i++;
    if (i == 0 || i == n || p[i] != ':') return 400; /* also a folded line */
    size_t name_len = i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    size_t e = n;
    while (e > i && (p[e - 1] == ' ' || p[e - 1] == '\t')) e--;
    for (size_t k = i; k < e; k++)
        if (!is_vchar((unsigned char)p[k])) return 400;
    const char *v = p + i;
    size_t vn = e - i;
    if (name_is(p, name_len, "host")) {
        f->hosts++;
    } else if (name_is(p, name_len, "connection")) {
        parse_connection(v, vn, &f->close, &f->keep);
    } else if (name_is(p, name_len, "content-length")) {
        if (vn == 0) return 400;
        for (size_t k = 0; k < vn; k++) {
            if (v[k] < '0' || v[k] > '9') return 400;
            if (v[k] != '0') req->has_body = true;
        }
    } else if (name_is(p, name_len, "transfer-encoding")) {
        req->has_body = true;
    }
    return 0;
}

enum http_parse_status http_parse(const char *in, size_t len, size_t max_head, size_t *scan,
                                  struct http_request *req)
{
    memset(req, 0, sizeof *req);
    size_t end = head_end(in, len < max_head ? len : max_head, scan);
    if (!end) return len >= max_head ? invalid(req, 431) : HTTP_NEED_MORE;
    req->head_len = end;
    struct head_fields f = {0, false, false};
    size_t pos = 0;
    for (unsigned line = 0;; line++) {
        const char *nl = memchr(in + pos, '\n', end - pos);
        size_t n = (size_t)(nl - (in + pos));
        if (n && in[pos + n - 1] == '\r') n--;
        if (memchr(in + pos, '\r', n)) return invalid(req, 400); /* a bare CR */
        if (n == 0) {
            if (line == 0) return invalid(req, 400); /* see http_skip_blank_lines */
            break;                                   /* the blank line */
        }
        int st = line == 0 ? parse_request_line(in + pos, n, req)
                           : parse_header(in + pos, n, &f, req);
        if (st) return invalid(req, st);
        pos = (size_t)(nl - in) + 1;
    }
    if (f.hosts > 1 || (req->minor >= 1 && f.hosts == 0)) return invalid(req, 400);
    req->keep_alive = !f.close && (req->minor >= 1 || f.keep) && !req->has_body;
    return HTTP_DONE;
}

size_t http_skip_blank_lines(const char *in, size_t len)
{
    size_t i = 0;
    while (i < len && (in[i] == '\n' || (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')))
        i += in[i] == '\r' ? 2 : 1;
    return i;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    }
    return "Error";
}
