/*
 * reply.c - output queue of a connection (see reply.h for the layout).
 *
 * buf only grows while something in it is unsent; once every segment has
 * been sent, buf and the segment list restart at zero, so a client that
 * keeps up never causes a copy or a move. When a slow client leaves a sent
 * prefix behind, the queue compacts buf before growing it.
 */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto.h"
#include "store.h"

#define BUF_MIN 4096
#define REPLY_BUF_KEEP (64u << 10) /* a drained buffer bigger than this is freed */

void reply_queue_init(struct reply_queue *q, struct store *store)
{
    memset(q, 0, sizeof *q);
    q->store = store;
}

void reply_queue_free(struct reply_queue *q)
{
    for (uint32_t i = q->seg_first; i < q->seg_len; i++)
        if (q->segs[i].item) store_item_unref(q->store, q->segs[i].item);
    free(q->buf);
    free(q->segs);
    memset(q, 0, sizeof *q);
}

/* Offset of the first unsent byte of buf that a segment still needs. */
static size_t buf_live_start(const struct reply_queue *q)
{
    for (uint32_t i = q->seg_first; i < q->seg_len; i++)
        if (!q->segs[i].item) return q->segs[i].off;
    return q->buf_len;
}

static int buf_room(struct reply_queue *q, size_t n)
{
    if (q->buf_cap - q->buf_len >= n) return 0;
    size_t start = buf_live_start(q);
    if (start > 0 && start >= q->buf_len / 2) { /* compact a sent prefix */
        memmove(q->buf, q->buf + start, q->buf_len - start);
        for (uint32_t i = q->seg_first; i < q->seg_len; i++)
            if (!q->segs[i].item) q->segs[i].off -= start;
        q->buf_len -= start;
        if (q->buf_cap - q->buf_len >= n) return 0;
    }
    size_t cap = q->buf_cap ? q->buf_cap : BUF_MIN;
    while (cap - q->buf_len < n) cap *= 2;
    char *nb = realloc(q->buf, cap);
    if (!nb) return -1;
    q->buf = nb;
    q->buf_cap = cap;
    return 0;
}

/* Make sure one more segment fits. Returns 0, or -1 on ENOMEM. */
static int seg_room(struct reply_queue *q)
{
    if (q->seg_len < q->seg_cap) return 0;
    if (q->seg_first > 0) { /* reuse the sent front */
        memmove(q->segs, q->segs + q->seg_first,
                (q->seg_len - q->seg_first) * sizeof *q->segs);
        q->seg_len -= q->seg_first;
        q->seg_first = 0;
        if (q->seg_len < q->seg_cap) return 0;
    }
    uint32_t cap = q->seg_cap ? q->seg_cap * 2 : 16;
    struct reply_seg *ns = realloc(q->segs, cap * sizeof *ns);
    if (!ns) return -1;
    q->segs = ns;
    q->seg_cap = cap;
    return 0;
}

char *reply_reserve(struct reply_queue *q, size_t n)
{
    if (seg_room(q) != 0 || buf_room(q, n) != 0) return NULL;
    return q->buf + q->buf_len;
}

void reply_commit(struct reply_queue *q, size_t n)
{
    if (n == 0) return;
    struct reply_seg *last = q->seg_len > q->seg_first ? &q->segs[q->seg_len - 1] : NULL;
    if (last && !last->item && last->off + last->len == q->buf_len) {
        last->len += n;
    } else { /* reply_reserve made room for this segment */
        q->segs[q->seg_len++] =
            (struct reply_seg){.item = NULL, .ptr = NULL, .off = q->buf_len, .len = n};
    }
    q->buf_len += n;
    q->pending += n;
}

int reply_bytes(struct reply_queue *q, const void *p, size_t n)
{
    char *dst = reply_reserve(q, n);
    if (!dst) return -1;
    memcpy(dst, p, n);
    reply_commit(q, n);
    return 0;
}

/* A segment pointing at it's value bytes (referenced until sent). */
static int ref_value(struct reply_queue *q, struct item *it)
{
    if (seg_room(q) != 0) return -1;
    store_item_ref(it);
    q->segs[q->seg_len++] =
        (struct reply_seg){.item = it, .ptr = item_value(it), .off = 0, .len = it->value_len};
    q->pending += it->value_len;
    return 0;
}

int reply_raw_value(struct reply_queue *q, struct item *it)
{
    if (it->value_len >= REPLY_REF_MIN) return ref_value(q, it);
    return reply_bytes(q, item_value(it), it->value_len);
}

int reply_value(struct reply_queue *q, struct item *it)
{
    const char *v = item_value(it);
    size_t len = it->value_len;
    size_t enc = len; /* scan each value once: most values need no escaping */
    if (!(it->flags & ITEM_F_PLAIN)) {
        enc = proto_value_encoded_len(v, len);
        if (enc == len) it->flags |= ITEM_F_PLAIN;
    }
    if (enc == len && len >= REPLY_REF_MIN) {
        if (ref_value(q, it) != 0) return -1;
        return reply_bytes(q, "\n", 1);
    }
    char *dst = reply_reserve(q, enc + 1);
    if (!dst) return -1;
    if (enc == len) memcpy(dst, v, len);
    else proto_value_encode(dst, v, len);
    dst[enc] = '\n';
    reply_commit(q, enc + 1);
    return 0;
}

int reply_printf(struct reply_queue *q, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
    return reply_bytes(q, tmp, (size_t)n);
}

int reply_queue_iov(const struct reply_queue *q, struct iovec *iov, int max,
                    size_t max_bytes)
{
    int n = 0;
    size_t total = 0;
    for (uint32_t i = q->seg_first; i < q->seg_len && n < max && total < max_bytes; i++) {
        const struct reply_seg *s = &q->segs[i];
        size_t len = s->len;
        if (len > max_bytes - total) len = max_bytes - total;
        iov[n].iov_base = (void *)(s->item ? s->ptr : q->buf + s->off);
        iov[n].iov_len = len;
        total += len;
        n++;
    }
    return n;
}

void reply_queue_consume(struct reply_queue *q, size_t n)
{
    q->pending -= n;
    while (n > 0 && q->seg_first < q->seg_len) {
        struct reply_seg *s = &q->segs[q->seg_first];
        size_t take = n < s->len ? n : s->len;
        if (s->item) s->ptr += take;
        else s->off += take;
        s->len -= take;
        n -= take;
        if (s->len == 0) {
            if (s->item) store_item_unref(q->store, s->item);
            q->seg_first++;
        }
    }
    if (q->seg_first == q->seg_len) { /* all sent: restart at zero */
        q->seg_first = q->seg_len = 0;
        q->buf_len = 0;
        if (q->buf_cap > REPLY_BUF_KEEP) { /* one big reply must not pin memory */
            free(q->buf);
            q->buf = NULL;
            q->buf_cap = 0;
        }
    }
}
