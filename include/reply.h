/*
 * reply.h - a connection's queue of reply bytes waiting to be sent.
 *
 * Owns: the output buffer and the segment list that is turned into one
 * iovec array per writev. Knows nothing of sockets: reply_queue_iov() fills
 * iovecs, the caller writes them, reply_queue_consume() drops what was sent.
 *
 *   segs:  [buf 0..120) [item A value] [buf 120..121) [buf ...]
 *   buf:   "OK\npong\n...\n"            (one contiguous, growable block)
 *
 * Small replies are copied into buf and adjacent ones merge into one
 * segment, so a pipeline of small gets becomes one iovec. A value of at
 * least REPLY_REF_MIN bytes that needs no escaping is not copied: its
 * segment points into the item, which is referenced until sent.
 * Invariant: pending == sum of the unsent bytes of all segments.
 */
#ifndef VITAMIN_REPLY_H
#define VITAMIN_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

struct item;
struct store;

#define REPLY_REF_MIN 512

struct reply_seg {
    struct item *item; /* referenced item, or NULL for a range of buf */
    const char *ptr;   /* item: start of the bytes (inside the item) */
    size_t off;        /* buf range: offset into buf */
    size_t len;        /* bytes not yet sent */
};

struct reply_queue {
    char *buf;              /* reply bytes; segments refer to it by offset */
    size_t buf_len;         /* bytes used in buf */
    size_t buf_cap;
    struct reply_seg *segs; /* segments [seg_first, seg_len) are unsent */
    uint32_t seg_first;
    uint32_t seg_len;
    uint32_t seg_cap;
    size_t pending;         /* unsent bytes */
    struct store *store;    /* for store_item_unref */
};

void reply_queue_init(struct reply_queue *q, struct store *store);
/* Drop everything (unreferencing items) and free the memory. */
void reply_queue_free(struct reply_queue *q);

/* Reserve n bytes at the end of the queue and return where to write them;
 * finish with reply_commit(q, written). Returns NULL on ENOMEM. */
char *reply_reserve(struct reply_queue *q, size_t n);
void reply_commit(struct reply_queue *q, size_t n);

/* Append bytes (copied). Returns 0, or -1 on ENOMEM. */
int reply_bytes(struct reply_queue *q, const void *p, size_t n);
/* Append a NUL-terminated string (copied). */
static inline int reply_str(struct reply_queue *q, const char *s)
{
    return reply_bytes(q, s, strlen(s));
}
/* Append the encoded value of it and '\n' (copied or referenced):
 * Vitamin's reply encoding (proto.h). */
int reply_value(struct reply_queue *q, struct item *it);
/* Append it's value bytes as they are (copied or referenced), for the
 * memcached and Redis protocols, which frame values by length. */
int reply_raw_value(struct reply_queue *q, struct item *it);
/* Append printf-formatted text. */
int reply_printf(struct reply_queue *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fill up to max iovecs with the unsent bytes, at most max_bytes of them.
 * Returns the number of iovecs. */
int reply_queue_iov(const struct reply_queue *q, struct iovec *iov, int max,
                    size_t max_bytes);
/* Mark n bytes as sent. */
void reply_queue_consume(struct reply_queue *q, size_t n);

#endif
