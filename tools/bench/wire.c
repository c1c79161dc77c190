/*
 * wire.c - request templates and reply parsers (see wire.h).
 */
#include "wire.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const names[] = {"vitamin", "memcache", "redis"};

const char *wire_protocol_name(enum wire_protocol p) { return names[p]; }

int wire_protocol_parse(const char *name, enum wire_protocol *p)
{
    if (!strcmp(name, "vitamin")) *p = WIRE_VITAMIN;
    else if (!strcmp(name, "memcache") || !strcmp(name, "memcached")) *p = WIRE_MEMCACHE;
    else if (!strcmp(name, "redis")) *p = WIRE_REDIS;
    else return -1;
    return 0;
}

int wire_tmpl_make(struct wire_tmpl *t, enum wire_protocol p, enum wire_op op,
                   const char *value, size_t value_len, unsigned ttl)
{
    static const char key0[] = "key:000000000000";
    size_t cap = value_len + 256;
    int vl = (int)value_len;
    char ttls[16];
    snprintf(ttls, sizeof ttls, "%u", ttl);
    t->buf = malloc(cap);
    if (!t->buf) return -1;
    int n = 0;
    switch (p) {
    case WIRE_VITAMIN:
        if (op == WIRE_GET) n = snprintf(t->buf, cap, "get(\"%s\")\n", key0);
        else if (ttl) n = snprintf(t->buf, cap, "set(\"%s\",\"%.*s\",%s)\n", key0, vl, value, ttls);
        else n = snprintf(t->buf, cap, "set(\"%s\",\"%.*s\")\n", key0, vl, value);
        break;
    case WIRE_MEMCACHE:
        if (op == WIRE_GET) n = snprintf(t->buf, cap, "get %s\r\n", key0);
        else n = snprintf(t->buf, cap, "set %s 0 %s %d\r\n%.*s\r\n", key0, ttls, vl, vl, value);
        break;
    case WIRE_REDIS:
        if (op == WIRE_GET)
            n = snprintf(t->buf, cap, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", WIRE_KEY_LEN, key0);
        else if (ttl)
            n = snprintf(t->buf, cap,
                         "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%.*s\r\n$2\r\nEX\r\n$%zu\r\n%s\r\n",
                         WIRE_KEY_LEN, key0, vl, vl, value, strlen(ttls), ttls);
        else
            n = snprintf(t->buf, cap, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%.*s\r\n",
                         WIRE_KEY_LEN, key0, vl, vl, value);
        break;
    }
    t->len = (size_t)n;
    t->digits_off = (size_t)(strstr(t->buf, "key:") - t->buf) + 4;
    return 0;
}

void wire_tmpl_free(struct wire_tmpl *t)
{
    free(t->buf);
    t->buf = NULL;
}

static bool starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

/* Vitamin: one line per reply; "Error: Record not found" is a get miss,
 * any other "Error: " line an error (values never start with it). */
static long parse_vitamin(const char *p, size_t n, enum wire_op op, enum wire_outcome *out)
{
    const char *nl = memchr(p, '\n', n);
    if (!nl) return 0;
    size_t len = (size_t)(nl - p);
    if (starts(p, len, "Error: "))
        *out = op == WIRE_GET && starts(p, len, "Error: Record not found") ? WIRE_MISS : WIRE_ERR;
    else
        *out = op == WIRE_GET ? WIRE_HIT : WIRE_OK;
    return (long)len + 1;
}

/* memcached text: STORED / END / VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n;
 * ERROR, CLIENT_ERROR, SERVER_ERROR and NOT_STORED lines are errors. */
static long parse_memcache(const char *p, size_t n, enum wire_op op, enum wire_outcome *out)
{
    const char *nl = memchr(p, '\n', n);
    if (!nl) return 0;
    size_t line = (size_t)(nl - p) + 1;
    if (op == WIRE_SET) {
        *out = starts(p, line, "STORED\r\n") ? WIRE_OK : WIRE_ERR;
        return (long)line;
    }
    if (starts(p, line, "END\r\n")) {
        *out = WIRE_MISS;
        return (long)line;
    }
    if (!starts(p, line, "VALUE ")) {
        *out = WIRE_ERR;
        return (long)line;
    }
    if (p[line - 2] != '\r') return -1;
    size_t i = line - 2, bytes = 0, mul = 1; /* the last token is <bytes> */
    while (p[i - 1] >= '0' && p[i - 1] <= '9' && mul <= UINT64_C(1000000000)) {
        bytes += (size_t)(p[i - 1] - '0') * mul;
        mul *= 10;
        i--;
    }
    if (i == line - 2 || p[i - 1] != ' ') return -1;
    size_t total = line + bytes + 7; /* data, "\r\nEND\r\n" */
    if (n < total) return 0;
    if (memcmp(p + line + bytes, "\r\nEND\r\n", 7) != 0) return -1;
    *out = WIRE_HIT;
    return (long)total;
}

/* Redis RESP: +simple, -error, :integer, $bulk ($-1 = nil), _ (RESP3 null). */
static long parse_redis(const char *p, size_t n, enum wire_op op, enum wire_outcome *out)
{
    const char *nl = memchr(p, '\n', n);
    if (!nl) return 0;
    size_t line = (size_t)(nl - p) + 1;
    if (line < 3 || p[line - 2] != '\r') return -1;
    switch (p[0]) {
    case '+':
    case ':':
        *out = op == WIRE_GET ? WIRE_ERR : WIRE_OK;
        return (long)line;
    case '-':
        *out = WIRE_ERR;
        return (long)line;
    case '_':
        *out = WIRE_MISS;
        return (long)line;
    case '$': {
        if (p[1] == '-') {
            *out = WIRE_MISS;
            return (long)line;
        }
        size_t bytes = 0;
        for (size_t i = 1; i < line - 2; i++) {
            if (p[i] < '0' || p[i] > '9' || bytes > (SIZE_MAX >> 4)) return -1;
            bytes = bytes * 10 + (size_t)(p[i] - '0');
        }
        size_t total = line + bytes + 2;
        if (n < total) return 0;
        if (p[total - 2] != '\r' || p[total - 1] != '\n') return -1;
        *out = op == WIRE_GET ? WIRE_HIT : WIRE_OK;
        return (long)total;
    }
    default:
        return -1;
    }
}

long wire_parse(enum wire_protocol p, const char *buf, size_t n, enum wire_op op,
                enum wire_outcome *out)
{
    switch (p) {
    case WIRE_VITAMIN: return parse_vitamin(buf, n, op, out);
    case WIRE_MEMCACHE: return parse_memcache(buf, n, op, out);
    case WIRE_REDIS: return parse_redis(buf, n, op, out);
    }
    return -1;
}
