/*
 * resp.c - Redis request parser (contract and error table in resp.h).
 *
 * Owns only code and const tables; all state is the caller's struct
 * resp_parser, which holds offsets (never pointers) so the caller may move
 * or grow its buffer between calls.
 *
 * Multibulk, resumable. pos is the first byte not yet settled; each step
 * either settles a whole piece and moves pos past it, or stops:
 *
 *     *3\r\n $3\r\n SET \r\n $1\r\n k \r\n $5\r\n va|lue\r\n
 *                                              ^pos     ^len: need-more,
 *     nargs = 3, argc = 2, in_bulk, bulk_len = 5        want = pos + 5 + 2
 *
 * A header line is looked for with memchr from pos + scan, and scan records
 * how far the search got, so a header dribbled in byte by byte is still
 * searched once. Stored arguments keep their offset from the request start
 * in argv[i].off; on completion one pass turns offsets into pointers.
 *
 * Inline: the line is searched for '\n' the same way (scan), then split in
 * two passes over the complete line: the first only counts tokens and checks
 * the quotes (no writes), the second, once argv is known to be big enough,
 * unescapes quoted tokens in place and fills argv.
 */
#include "resp.h"

#include <string.h>

#include "num.h"
#include "resp_reply.h"

enum { KIND_NONE = 0, KIND_INLINE, KIND_MULTIBULK };

void resp_parser_init(struct resp_parser *p, struct resp_arg *argv, size_t argv_cap)
{
    *p = (struct resp_parser){.argv = argv, .argv_cap = argv_cap};
}

void resp_parser_reset(struct resp_parser *p)
{
    bool noauth = p->noauth;
    resp_parser_init(p, p->argv, p->argv_cap);
    p->noauth = noauth;
}

static enum resp_status fail(struct resp_parser *p, enum resp_status st)
{
    p->err = (uint8_t)st;
    return st;
}

/* ---- Multibulk --------------------------------------------------------- */

enum line_result { LINE_OK, LINE_MORE, LINE_TOO_BIG };

/*
 * Find the '\r' that ends the header line starting at buf[p->pos]. The line
 * may hold at most RESP_INLINE_MAX bytes before its '\r', and one byte must
 * follow the '\r' (it is skipped unchecked, as Redis does). On LINE_OK,
 * *cr_off is the '\r''s offset from pos.
 */
static enum line_result header_line(struct resp_parser *p, const char *buf, size_t len,
                                    size_t *cr_off)
{
    size_t avail = len - p->pos;
    size_t lim = avail < RESP_INLINE_MAX + 1 ? avail : RESP_INLINE_MAX + 1;

    /* scan only grows while len does: a '\r' found earlier is at scan < lim */
    if (p->scan < lim) {
        const char *cr = memchr(buf + p->pos + p->scan, '\r', lim - p->scan);
        if (cr == NULL) {
            p->scan = lim;
        } else {
            p->scan = (size_t)(cr - (buf + p->pos));
            if (p->scan + 1 < avail) {
                *cr_off = p->scan;
                return LINE_OK;
            }
            return LINE_MORE; /* the byte after '\r' has not arrived */
        }
    }
    return avail > RESP_INLINE_MAX ? LINE_TOO_BIG : LINE_MORE;
}

/* "*<count>\r\n": sets p->nargs, or finishes an empty request. */
static enum resp_status parse_count(struct resp_parser *p, const char *buf, size_t len,
                                    const struct resp_limits *lim, bool *empty)
{
    size_t cr;
    switch (header_line(p, buf, len, &cr)) {
    case LINE_MORE: return RESP_NEED_MORE;
    case LINE_TOO_BIG: return fail(p, RESP_ERR_MBULK_COUNT_TOO_BIG);
    case LINE_OK: break;
    }
    int64_t n;
    if (!num_parse_i64(buf + p->pos + 1, cr - 1, &n) ||
        (n > 0 && (unsigned long long)n > lim->max_args))
        return fail(p, RESP_ERR_MULTIBULK_LEN);
    if (p->noauth && n > (long long)RESP_UNAUTH_MAX_ARGS)
        return fail(p, RESP_ERR_UNAUTH_MULTIBULK_LEN);
    p->pos += cr + 2;
    p->scan = 0;
    *empty = n <= 0;
    p->nargs = n > 0 ? (size_t)n : 0;
    return RESP_OK;
}

/* "$<len>\r\n": sets p->bulk_len and p->in_bulk. */
static enum resp_status parse_bulk_header(struct resp_parser *p, const char *buf,
                                          size_t len, const struct resp_limits *lim)
{
    size_t cr;
    switch (header_line(p, buf, len, &cr)) {
    case LINE_MORE: return RESP_NEED_MORE;
    case LINE_TOO_BIG: return fail(p, RESP_ERR_BULK_COUNT_TOO_BIG);
    case LINE_OK: break;
    }
    if (buf[p->pos] != '$') {
        p->bad = (unsigned char)buf[p->pos];
        return fail(p, RESP_ERR_EXPECTED_DOLLAR);
    }
    int64_t n;
    if (!num_parse_i64(buf + p->pos + 1, cr - 1, &n) || n < 0 ||
        (unsigned long long)n > lim->max_bulk_len)
        return fail(p, RESP_ERR_BULK_LEN);
    if (p->noauth && n > (long long)RESP_UNAUTH_MAX_BULK)
        return fail(p, RESP_ERR_UNAUTH_BULK_LEN);
    p->pos += cr + 2;
    p->scan = 0;
    p->bulk_len = (size_t)n;
    p->in_bulk = true;
    return RESP_OK;
}

static enum resp_status parse_multibulk(struct resp_parser *p, const char *buf,
                                        size_t len, const struct resp_limits *lim)
{
    enum resp_status st;

    if (p->nargs == 0) { /* the count line is not parsed yet */
        bool empty;
        if ((st = parse_count(p, buf, len, lim, &empty)) != RESP_OK)
            return st;
        if (empty) {
            p->consumed = p->pos;
            p->argc = 0;
            return RESP_OK;
        }
    }
    while (p->argc < p->nargs) {
        if (!p->in_bulk && (st = parse_bulk_header(p, buf, len, lim)) != RESP_OK)
            return st;
        if (len - p->pos < p->bulk_len || len - p->pos - p->bulk_len < 2)
            return RESP_NEED_MORE;
        if (p->argc >= p->argv_cap) {
            size_t want = p->argv_cap < 8 ? 16 : p->argv_cap * 2;
            p->want_argv = want < p->nargs ? want : p->nargs;
            return RESP_ARGV_FULL;
        }
        p->argv[p->argc].off = p->pos;
        p->argv[p->argc].len = p->bulk_len;
        p->argc++;
        p->pos += p->bulk_len + 2; /* the two bytes after the data: unchecked */
        p->in_bulk = false;
    }
    for (size_t i = 0; i < p->argc; i++) {
        size_t off = p->argv[i].off;
        p->argv[i].ptr = buf + off;
    }
    p->consumed = p->pos;
    return RESP_OK;
}

/* ---- Inline ------------------------------------------------------------ */

/* Blanks skipped between tokens (C isspace). */
static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * Split line[0..n) into tokens (rules in resp.h). With argv == NULL only
 * counts and checks (no writes); otherwise unescapes in place and fills
 * argv, which the caller guarantees is big enough. Returns the number of
 * tokens, or (size_t)-1 for unbalanced quotes.
 */
static size_t split_inline(char *line, size_t n, struct resp_arg *argv)
{
    enum { PLAIN, DQ, SQ };
    size_t i = 0, argc = 0;
    const bool write = argv != NULL;

    for (;;) {
        while (i < n && is_space((unsigned char)line[i]))
            i++;
        if (i == n)
            return argc;
        size_t start = i, w = i; /* w: output cursor, w <= i */
        int q = PLAIN;
        for (;;) {
            if (i == n) {
                if (q != PLAIN)
                    return (size_t)-1;
                break;
            }
            unsigned char c = (unsigned char)line[i];
            int out = -1; /* byte to append, if any */
            if (q == PLAIN) {
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                    i++;
                    break;
                }
                if (c == '"') q = DQ;
                else if (c == '\'') q = SQ;
                else out = c;
                i++;
            } else if (q == DQ) {
                if (c == '\\' && i + 3 < n && line[i + 1] == 'x' &&
                    hex_val((unsigned char)line[i + 2]) >= 0 &&
                    hex_val((unsigned char)line[i + 3]) >= 0) {
                    out = hex_val((unsigned char)line[i + 2]) << 4 |
                          hex_val((unsigned char)line[i + 3]);
                    i += 4;
                } else if (c == '\\' && i + 1 < n) {
                    switch (line[i + 1]) {
                    case 'n': out = '\n'; break;
                    case 'r': out = '\r'; break;
                    case 't': out = '\t'; break;
                    case 'b': out = '\b'; break;
                    case 'a': out = '\a'; break;
                    default: out = (unsigned char)line[i + 1]; break;
                    }
                    i += 2;
                } else if (c == '"') {
                    if (i + 1 < n && !is_space((unsigned char)line[i + 1]))
                        return (size_t)-1;
                    i++;
                    break;
                } else {
                    out = c;
                    i++;
                }
            } else { /* SQ */
                if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
                    out = '\'';
                    i += 2;
                } else if (c == '\'') {
                    if (i + 1 < n && !is_space((unsigned char)line[i + 1]))
                        return (size_t)-1;
                    i++;
                    break;
                } else {
                    out = c;
                    i++;
                }
            }
            if (out >= 0) {
                /* i has moved past the input of this byte, so w < i here */
                if (write && line[w] != (char)out)
                    line[w] = (char)out;
                w++;
            }
        }
        if (write) {
            argv[argc].ptr = line + start;
            argv[argc].len = w - start;
        }
        argc++;
    }
}

static enum resp_status parse_inline(struct resp_parser *p, char *buf, size_t len)
{
    size_t lim = len < RESP_INLINE_MAX + 1 ? len : RESP_INLINE_MAX + 1;
    const char *nl = NULL;

    if (p->scan < lim) /* a '\n' found earlier (RESP_ARGV_FULL) is at scan */
        nl = memchr(buf + p->scan, '\n', lim - p->scan);
    if (nl == NULL) {
        p->scan = lim;
        return len > RESP_INLINE_MAX ? fail(p, RESP_ERR_INLINE_TOO_BIG) : RESP_NEED_MORE;
    }
    size_t nl_off = (size_t)(nl - buf);
    size_t line_len = nl_off;
    p->scan = nl_off;
    if (line_len > 0 && buf[line_len - 1] == '\r')
        line_len--;

    size_t argc = split_inline(buf, line_len, NULL);
    if (argc == (size_t)-1)
        return fail(p, RESP_ERR_UNBALANCED_QUOTES);
    if (argc > p->argv_cap) {
        p->want_argv = argc;
        return RESP_ARGV_FULL;
    }
    split_inline(buf, line_len, p->argv);
    p->argc = argc;
    p->consumed = nl_off + 1;
    return RESP_OK;
}

/* ---- Entry points ------------------------------------------------------ */

enum resp_status resp_parse(struct resp_parser *p, char *buf, size_t len,
                            const struct resp_limits *limits)
{
    if (p->err != 0)
        return (enum resp_status)p->err;
    if (p->kind == KIND_NONE) { /* a new request: forget the last one's offsets */
        resp_parser_reset(p);
        if (len == 0)
            return RESP_NEED_MORE;
        p->kind = buf[0] == '*' ? KIND_MULTIBULK : KIND_INLINE;
    }
    if (len < p->pos)
        return RESP_NEED_MORE; /* the caller gave back fewer bytes than before */
    enum resp_status st = p->kind == KIND_MULTIBULK ? parse_multibulk(p, buf, len, limits)
                                                    : parse_inline(p, buf, len);
    if (st == RESP_OK)
        p->kind = KIND_NONE; /* argc and consumed stay readable until the next call */
    return st;
}

size_t resp_argv_want(const struct resp_parser *p)
{
    return p->want_argv;
}

size_t resp_parser_want(const struct resp_parser *p)
{
    if (p->kind == KIND_MULTIBULK && p->in_bulk)
        return p->pos + p->bulk_len + 2;
    return 0;
}

const char *resp_status_str(enum resp_status st)
{
    switch (st) {
    case RESP_OK: return "ok";
    case RESP_NEED_MORE: return "need more";
    case RESP_ARGV_FULL: return "argv full";
    case RESP_ERR_MULTIBULK_LEN: return "invalid multibulk length";
    case RESP_ERR_UNAUTH_MULTIBULK_LEN: return "unauthenticated multibulk length";
    case RESP_ERR_MBULK_COUNT_TOO_BIG: return "too big mbulk count string";
    case RESP_ERR_EXPECTED_DOLLAR: return "expected '$'";
    case RESP_ERR_BULK_LEN: return "invalid bulk length";
    case RESP_ERR_UNAUTH_BULK_LEN: return "unauthenticated bulk length";
    case RESP_ERR_BULK_COUNT_TOO_BIG: return "too big bulk count string";
    case RESP_ERR_INLINE_TOO_BIG: return "too big inline request";
    case RESP_ERR_UNBALANCED_QUOTES: return "unbalanced quotes in request";
    }
    return "unknown status";
}

size_t resp_error_line(char *dst, size_t cap, enum resp_status st,
                       const struct resp_parser *p)
{
    char line[RESP_ERROR_LINE_MAX];
    static const char head[] = "-ERR Protocol error: ";
    size_t n = sizeof head - 1;

    memcpy(line, head, n);
    if (st == RESP_ERR_EXPECTED_DOLLAR) {
        unsigned char c = p != NULL ? p->bad : '?';
        if (c == '\r' || c == '\n')
            c = ' '; /* Redis keeps error lines on one line this way */
        static const char pre[] = "expected '$', got '";
        memcpy(line + n, pre, sizeof pre - 1);
        n += sizeof pre - 1;
        line[n++] = (char)c;
        line[n++] = '\'';
    } else {
        const char *text = st >= RESP_ERR_MULTIBULK_LEN && st <= RESP_ERR_UNBALANCED_QUOTES
                               ? resp_status_str(st) : "invalid request";
        size_t tl = strlen(text);
        memcpy(line + n, text, tl);
        n += tl;
    }
    line[n++] = '\r';
    line[n++] = '\n';

    if (n <= cap) {
        memcpy(dst, line, n);
        return n;
    }
    if (cap < 2)
        return 0;
    memcpy(dst, line, cap - 2);
    dst[cap - 2] = '\r';
    dst[cap - 1] = '\n';
    return cap;
}
