/*
 * mc_reply.c - memcached text protocol reply encoder (see mc_reply.h).
 *
 * Owns only code and const tables. Every writer appends with put_*()
 * helpers into a buffer the caller sized: MC_REPLY_LINE_MAX for the
 * fixed-size lines (their longest case is worked out below), an explicit
 * capacity for the lines that carry caller strings (VERSION, STAT).
 *
 * Longest meta line (each flag at most once, mc_parse() refuses repeats):
 *   "VA " 3 + size 20 + " s" 22 + " t" 22 + " c" 22 + " f" 12 + " l" 12
 *   + " h1" 3 + " O" 33 + " k" 250 + " b" 2 + " Z X W" 6 + "\r\n" 2 = 409
 * Longest VALUE line: "VALUE " 6 + key 250 + flags 11 + bytes 21 + cas 21
 *   + "\r\n" 2 = 311.
 */
#include "mc_reply.h"

#include <string.h>

#define LINE(s) {s "\r\n", sizeof(s "\r\n") - 1}

static const struct {
    const char *s;
    uint8_t len;
} words[MC_W_COUNT] = {
    [MC_W_STORED] = LINE("STORED"),
    [MC_W_NOT_STORED] = LINE("NOT_STORED"),
    [MC_W_EXISTS] = LINE("EXISTS"),
    [MC_W_NOT_FOUND] = LINE("NOT_FOUND"),
    [MC_W_DELETED] = LINE("DELETED"),
    [MC_W_TOUCHED] = LINE("TOUCHED"),
    [MC_W_OK] = LINE("OK"),
    [MC_W_END] = LINE("END"),
    [MC_W_RESET] = LINE("RESET"),
    [MC_W_ERROR] = LINE("ERROR"),
    [MC_W_MN] = LINE("MN"),
    [MC_W_NON_NUMERIC] = LINE("CLIENT_ERROR cannot increment or decrement non-numeric value"),
    [MC_W_OOM_STORE] = LINE("SERVER_ERROR out of memory storing object"),
    [MC_W_OOM] = LINE("SERVER_ERROR out of memory"),
    [MC_W_AUTH_FAILED] = LINE("CLIENT_ERROR authentication failure"),
};

const char *mc_word(enum mc_word w, size_t *len)
{
    if ((unsigned)w >= MC_W_COUNT) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = words[w].len;
    return words[w].s;
}

/* ---- Writers ----------------------------------------------------------- */

static size_t put(char *dst, size_t at, const void *s, size_t n)
{
    memcpy(dst + at, s, n);
    return at + n;
}

/* Decimal digits of v at dst + at: count them, then write from the end. */
static size_t put_u64(char *dst, size_t at, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    size_t end = at + n;
    do {
        dst[--end] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return at + n;
}

static size_t put_i64(char *dst, size_t at, int64_t v)
{
    if (v >= 0)
        return put_u64(dst, at, (uint64_t)v);
    dst[at++] = '-';
    return put_u64(dst, at, (uint64_t)0 - (uint64_t)v);
}

static size_t put_crlf(char *dst, size_t at) { return put(dst, at, "\r\n", 2); }

/* " <c>" then what follows it */
static size_t put_flag(char *dst, size_t at, char c)
{
    dst[at] = ' ';
    dst[at + 1] = c;
    return at + 2;
}

size_t mc_value_header(char *dst, const char *key, size_t key_len, uint32_t flags,
                       size_t bytes, uint64_t cas, bool with_cas)
{
    size_t at = put(dst, 0, "VALUE ", 6);
    at = put(dst, at, key, key_len);
    dst[at++] = ' ';
    at = put_u64(dst, at, flags);
    dst[at++] = ' ';
    at = put_u64(dst, at, bytes);
    if (with_cas) {
        dst[at++] = ' ';
        at = put_u64(dst, at, cas);
    }
    return put_crlf(dst, at);
}

size_t mc_number_line(char *dst, uint64_t value)
{
    return put_crlf(dst, put_u64(dst, 0, value));
}

/* "<head><a><b>\r\n" if it fits in cap; returns its length anyway. */
static size_t put_capped(char *dst, size_t cap, const char *head, size_t head_len,
                         const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t need = head_len + a_len + b_len + 2;
    if (need <= cap) {
        size_t at = put(dst, 0, head, head_len);
        at = put(dst, at, a, a_len);
        at = put(dst, at, b, b_len);
        put_crlf(dst, at);
    }
    return need;
}

size_t mc_version_line(char *dst, size_t cap, const char *version)
{
    return put_capped(dst, cap, "VERSION ", 8, version, strlen(version), "", 0);
}

size_t mc_stat_line(char *dst, size_t cap, const char *name, const char *value,
                    size_t value_len)
{
    size_t name_len = strlen(name);
    size_t need = 5 + name_len + 1 + value_len + 2;
    if (need <= cap) {
        size_t at = put(dst, 0, "STAT ", 5);
        at = put(dst, at, name, name_len);
        dst[at++] = ' ';
        at = put(dst, at, value, value_len);
        put_crlf(dst, at);
    }
    return need;
}

size_t mc_stat_u64(char *dst, size_t cap, const char *name, uint64_t value)
{
    char digits[20];
    size_t n = put_u64(digits, 0, value);
    return mc_stat_line(dst, cap, name, digits, n);
}

/* ---- Meta -------------------------------------------------------------- */

static const char code_names[][2] = {
    [MC_META_VA] = {'V', 'A'}, [MC_META_HD] = {'H', 'D'}, [MC_META_EN] = {'E', 'N'},
    [MC_META_NF] = {'N', 'F'}, [MC_META_NS] = {'N', 'S'}, [MC_META_EX] = {'E', 'X'},
};

/* Does cmd return item flag c when there is an item? */
static bool item_flag(enum mc_cmd cmd, char c)
{
    switch (cmd) {
    case MC_CMD_MG: return strchr("stcflh", c) != NULL;
    case MC_CMD_MS: return c == 'c' || c == 's';
    case MC_CMD_MA: return c == 'c' || c == 't';
    default: return false;
    }
}

static size_t put_item_flag(char *dst, size_t at, char c, const struct mc_meta_item *it)
{
    at = put_flag(dst, at, c);
    switch (c) {
    case 's': return put_u64(dst, at, it->size);
    case 't': return put_i64(dst, at, it->ttl);
    case 'c': return put_u64(dst, at, it->cas);
    case 'f': return put_u64(dst, at, it->flags);
    case 'l': return put_u64(dst, at, it->idle);
    case 'h': dst[at] = it->fetched ? '1' : '0'; return at + 1;
    default: return at;
    }
}

size_t mc_meta_reply(char *dst, const struct mc_request *req, enum mc_meta_code code,
                     const struct mc_meta_item *it)
{
    size_t at = put(dst, 0, code_names[code], 2);

    if (code == MC_META_VA) {
        dst[at++] = ' ';
        at = put_u64(dst, at, it ? it->size : 0);
    }
    for (size_t i = 0; i < req->nflags; i++) {
        char c = req->order[i];
        if (c == 'O') {
            at = put_flag(dst, at, 'O');
            at = put(dst, at, req->opaque, req->opaque_len);
        } else if (c == 'k') {
            at = put_flag(dst, at, 'k');
            if (mc_has(req, 'b')) {
                at += mc_base64_encode(req->key, req->key_len, dst + at);
                at = put_flag(dst, at, 'b');
            } else {
                at = put(dst, at, req->key, req->key_len);
            }
        } else if (it != NULL && item_flag(req->cmd, c)) {
            at = put_item_flag(dst, at, c, it);
        }
    }
    if (it != NULL && req->cmd == MC_CMD_MG) {
        if (it->win_sent) at = put_flag(dst, at, 'Z');
        if (it->stale) at = put_flag(dst, at, 'X');
        if (it->win) at = put_flag(dst, at, 'W');
    }
    return put_crlf(dst, at);
}

bool mc_meta_quiet_skips(enum mc_cmd cmd, enum mc_meta_code code)
{
    switch (cmd) {
    case MC_CMD_MG: return code == MC_META_EN;
    case MC_CMD_MS: case MC_CMD_MD: return code == MC_META_HD;
    case MC_CMD_MA: return code == MC_META_HD || code == MC_META_VA; /* its success */
    default: return false;
    }
}

size_t mc_base64_encode(const char *src, size_t src_len, char *dst)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)src;
    size_t w = 0;

    for (size_t i = 0; i < src_len; i += 3) {
        size_t left = src_len - i;
        uint32_t x = (uint32_t)s[i] << 16;
        if (left > 1) x |= (uint32_t)s[i + 1] << 8;
        if (left > 2) x |= s[i + 2];
        dst[w++] = alphabet[x >> 18 & 63];
        dst[w++] = alphabet[x >> 12 & 63];
        dst[w++] = left > 1 ? alphabet[x >> 6 & 63] : '=';
        dst[w++] = left > 2 ? alphabet[x & 63] : '=';
    }
    return w;
}
