/*
 * wire.h - what vitamin-benchmark says and hears, for each protocol.
 *
 * Requests are preformatted once: a template per (protocol, op) holds the
 * whole request for key 0; making a request is a copy of the template with
 * the 12 key digits written in at digits_off. Keys are "key:%012d" (16 B).
 * Values must be [A-Za-z0-9] so that no protocol needs escaping and the
 * first "key:" in a template is the key.
 *
 *   vitamin   set("key:...","<value>",<ttl>)\n           get("key:...")\n
 *   memcache  set key:... 0 <ttl> <n>\r\n<value>\r\n     get key:...\r\n
 *   redis     *5 SET key:... <value> EX <ttl> (RESP)     *2 GET key:...
 *             (ttl 0: vitamin set(k,v), redis *3 SET k v, memcache exptime 0)
 *
 * The reply parser is a pure function over bytes: given the op of the
 * oldest request in flight, it returns the length of the first complete
 * reply and its outcome, 0 when more bytes are needed, or -1 when the bytes
 * cannot be a reply to that request (a desync).
 */
#ifndef VITAMIN_BENCH_WIRE_H
#define VITAMIN_BENCH_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WIRE_KEY_DIGITS 12
#define WIRE_KEY_LEN (4 + WIRE_KEY_DIGITS) /* "key:" + digits */

enum wire_protocol { WIRE_VITAMIN, WIRE_MEMCACHE, WIRE_REDIS };
enum wire_op { WIRE_GET, WIRE_SET };
enum wire_outcome {
    WIRE_OK,   /* a set was stored */
    WIRE_HIT,  /* a get found a value */
    WIRE_MISS, /* a get found nothing */
    WIRE_ERR,  /* the server answered with an error */
};

struct wire_tmpl {
    char *buf;         /* the request for key 0 */
    size_t len;        /* its bytes */
    size_t digits_off; /* where the WIRE_KEY_DIGITS key digits start */
};

/* "vitamin", "memcache", "redis". */
const char *wire_protocol_name(enum wire_protocol p);

/* Returns 0 and sets *p for a protocol name ("memcached" also works), -1
 * for an unknown one. */
int wire_protocol_parse(const char *name, enum wire_protocol *p);

/* Preformat the request of op; ttl 0 means none. Returns 0, or -1 when out
 * of memory. */
int wire_tmpl_make(struct wire_tmpl *t, enum wire_protocol p, enum wire_op op,
                   const char *value, size_t value_len, unsigned ttl);
void wire_tmpl_free(struct wire_tmpl *t);

/* Write the request of t for key (< 10^12) at dst (t->len bytes). */
static inline void wire_tmpl_put(const struct wire_tmpl *t, char *dst, uint64_t key)
{
    memcpy(dst, t->buf, t->len);
    char *d = dst + t->digits_off;
    for (int i = WIRE_KEY_DIGITS - 1; i >= 0; i--) {
        d[i] = (char)('0' + key % 10);
        key /= 10;
    }
}

/* Parse the reply to a request of op at the front of buf[0, n): returns its
 * length (> 0) and sets *out, 0 when incomplete, -1 on a desync. */
long wire_parse(enum wire_protocol p, const char *buf, size_t n, enum wire_op op,
                enum wire_outcome *out);

#endif
