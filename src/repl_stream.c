/*
 * repl_stream.c - the serving side of state transfer: walks of the store
 * sent to a peer that asked (or pushed to the pool), and the range-digest
 * replies of an incremental transfer.
 *
 * Owns: the streams (at most MAX_STREAMS at once: per node, one answer to
 * its request and one push of ours) and their counters. Loop thread only;
 * messages leave through repl_send().
 *
 * A stream's messages to its requester are numbered 1, 2, ... (seq) and
 * carry the requester's session (aux) and the number of our last WRITES
 * batch closed when the stream began (base); the requester checks the
 * numbering (repl_sync.c). Every stream ends with our flush watermarks
 * (FLUSH records, if we have any) before SYNC_DONE, whatever else it sent:
 * the requester may have missed that FLUSH (it joined after it, or it was
 * lost), and items below a pending delayed flush travel as they are.
 *
 *   full:         SYNC_DATA #1 (at once, maybe empty) ... SYNC_DONE (total)
 *   incremental:  DIGESTS #1: the root's 16 children
 *                 <- RANGES: nodes of level L      DIGESTS: their children
 *                 <- RANGES: leaves (or base=1: everything)
 *                 SYNC_DATA ... SYNC_DONE with the items of those leaves
 *                 <- RANGES with no node: nothing differs -> SYNC_DONE (0)
 *
 * A walk advances SYNC_SLICE items per step (filtered by a leaf bitmap for
 * an incremental transfer) and pauses while the outbox is half full. A
 * filtered walk of a large store may find nothing to send for seconds
 * (1M items take ~0.8 s): after STREAM_KEEPALIVE_S without a message it
 * sends what it has, maybe an empty SYNC_DATA, so that the requester,
 * which gives up on a source silent for 5 s (repl_sync.c), knows it is
 * alive. A stream waiting for RANGES that does not come within
 * STREAM_IDLE_S is dropped (the requester asks again if it still cares).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rdigest.h"
#include "record.h"
#include "repl_internal.h"
#include "reply.h"
#include "stats.h"
#include "store.h"

#define SYNC_SLICE 2048     /* items a walk looks at per step */
#define MAX_STREAMS 8
#define STREAM_IDLE_S 30.0  /* a stream waiting for RANGES this long goes */
#define STREAM_KEEPALIVE_S 1.0 /* a walk sends at least this often */

enum phase { PHASE_OFF = 0, PHASE_DIGESTS, PHASE_WALK };

struct stream {
    enum phase phase;
    bool begun;            /* the walk has started (cursor 0 is also the end) */
    char routing_key[REPL_QUEUE_MAX]; /* requester's queue, "" = fanout */
    char target[RC_MAX_ID_LEN + 1];   /* requester's node id, "" for a push */
    uint64_t session;      /* the requester's session id (aux) */
    uint64_t base;         /* our WRITES seq when the stream began */
    uint64_t cursor;       /* store_scan position */
    uint64_t msgs;         /* messages sent so far (their seq) */
    uint64_t items;        /* records sent so far */
    uint8_t *leaves;       /* walk only these leaves (bitmap); NULL = all */
    double last_active;    /* ev_now of the last message from the requester */
    double last_sent;      /* ev_now the walk last sent a message (or began) */
    struct rc_buf buf;     /* message being filled */
};

struct repl_streams {
    struct repl *r;
    struct store *store;
    struct stream streams[MAX_STREAMS];
    uint64_t served, bytes_sent, digests_sent;
};

static void stream_send(struct repl_streams *ss, struct stream *st)
{
    ss->bytes_sent += st->buf.len;
    repl_send(ss->r, &st->buf, st->routing_key, 0);
}

static void begin_msg(struct repl_streams *ss, struct stream *st, enum rc_kind kind)
{
    struct rc_header h;
    repl_header(ss->r, kind, &h);
    h.seq = ++st->msgs;
    h.aux = st->session;
    h.base = st->base;
    h.total = kind == RC_KIND_SYNC_DONE ? st->items : 0;
    h.target = st->target;
    h.target_len = strlen(st->target);
    st->buf.len = 0;
    rc_begin(&st->buf, &h);
}

/* The last messages: our flush watermark, then SYNC_DONE with the total. */
static void stream_finish(struct repl_streams *ss, struct stream *st)
{
    uint64_t ver[2];
    uint32_t origin[2];
    size_t n = store_flush_stamps(ss->store, ver, origin);
    for (size_t i = 0; i < n; i++) {
        if (rc_count(&st->buf) == 0) begin_msg(ss, st, RC_KIND_SYNC_DATA);
        struct rc_record rec = {.op = RC_OP_FLUSH, .version = ver[i], .origin_tag = origin[i],
                                .exp_version = ver[i], .exp_origin_tag = origin[i]};
        if (rc_append(&st->buf, &rec) == 0) st->items++;
    }
    if (rc_count(&st->buf)) stream_send(ss, st);
    begin_msg(ss, st, RC_KIND_SYNC_DONE);
    stream_send(ss, st);
}

static void stream_end(struct stream *st)
{
    rc_buf_free(&st->buf);
    free(st->leaves);
    memset(st, 0, sizeof *st);
}

struct visit {
    struct repl_streams *ss;
    struct stream *st;
    int64_t now;
};

static bool leaf_set(const uint8_t *bits, uint32_t leaf)
{
    return bits[leaf >> 3] & (1u << (leaf & 7));
}

static void visit(void *arg, const struct item *it)
{
    struct visit *v = arg;
    struct stream *st = v->st;
    if (st->leaves && !leaf_set(st->leaves, rdigest_leaf_of(item_key(it), it->key_len))) return;
    if (rc_count(&st->buf) == 0) begin_msg(v->ss, st, RC_KIND_SYNC_DATA);
    struct rc_record rec;
    record_of_item(it, v->now, &rec);
    if (rc_append(&st->buf, &rec) == 0) st->items++;
    if (st->buf.len >= REPL_BATCH_MAX_BYTES) stream_send(v->ss, st);
}

/* The stream to routing_key, restarted; NULL if all are busy. A new
 * request restarts the stream answering that requester's last one; a push
 * restarts the push to the same place (session 0); neither touches the
 * other kind. */
static struct stream *stream_open(struct repl_streams *ss, const char *routing_key,
                                  const char *target, size_t target_len, uint64_t session,
                                  double now)
{
    struct stream *st = NULL;
    for (int i = 0; i < MAX_STREAMS && !st; i++)
        if (ss->streams[i].phase && strcmp(ss->streams[i].routing_key, routing_key) == 0 &&
            (ss->streams[i].session == 0) == (session == 0))
            st = &ss->streams[i];
    for (int i = 0; i < MAX_STREAMS && !st; i++)
        if (!ss->streams[i].phase) st = &ss->streams[i];
    if (!st) {
        log_warn("replication: too many state transfers at once; dropping a request");
        return NULL;
    }
    stream_end(st);
    snprintf(st->routing_key, sizeof st->routing_key, "%s", routing_key);
    memcpy(st->target, target, target_len);
    st->target[target_len] = '\0';
    st->session = session;
    st->last_sent = now;
    st->base = repl_writes_seq(ss->r);
    st->last_active = now;
    return st;
}

/* Append a NODE record for (level, index) with value bytes to st->buf. */
static void append_node(struct stream *st, unsigned level, uint32_t index, const void *value,
                        size_t value_len)
{
    char key[RC_NODE_KEY_LEN] = {(char)level, (char)index, (char)(index >> 8),
                                 (char)(index >> 16), (char)(index >> 24)};
    struct rc_record rec = {.op = RC_OP_NODE, .key = key, .key_len = sizeof key,
                            .value = value, .value_len = value_len};
    rc_append(&st->buf, &rec);
}

/* Node (level, index) with its 16 children's digests, little-endian. */
static void append_children(struct repl_streams *ss, struct stream *st, unsigned level,
                            uint32_t index)
{
    unsigned char v[RDIGEST_FANOUT * 8];
    for (uint32_t k = 0; k < RDIGEST_FANOUT; k++) {
        uint64_t d = store_range_digest(ss->store, level + 1, index * RDIGEST_FANOUT + k);
        for (int b = 0; b < 8; b++) v[k * 8 + b] = (unsigned char)(d >> (8 * b));
    }
    append_node(st, level, index, v, sizeof v);
    ss->digests_sent++;
}

void repl_streams_request(struct repl_streams *ss, const char *routing_key, const char *target,
                          size_t target_len, uint64_t session, bool incremental, double now)
{
    struct stream *st = stream_open(ss, routing_key, target, target_len, session, now);
    if (!st) return;
    if (target_len) ss->served++;
    if (incremental) {
        st->phase = PHASE_DIGESTS;
        begin_msg(ss, st, RC_KIND_DIGESTS);
        append_children(ss, st, 0, 0);
        stream_send(ss, st);
        return;
    }
    st->phase = PHASE_WALK;
    begin_msg(ss, st, RC_KIND_SYNC_DATA); /* at once: the requester learns who answers */
    stream_send(ss, st);
}

void repl_streams_push(struct repl_streams *ss, const char *routing_key, const char *target,
                       size_t target_len, const uint8_t *leaves, double now)
{
    struct stream *st = stream_open(ss, routing_key, target, target_len, 0, now);
    if (!st) return;
    if (leaves) {
        st->leaves = malloc(RDIGEST_LEAVES / 8);
        if (!st->leaves) {
            stream_end(st);
            return;
        }
        memcpy(st->leaves, leaves, RDIGEST_LEAVES / 8);
    }
    st->phase = PHASE_WALK;
}

/* Read a NODE record's level and index. */
static void node_of(const struct rc_record *rec, unsigned *level, uint32_t *index)
{
    const unsigned char *k = (const unsigned char *)rec->key;
    *level = k[0];
    *index = (uint32_t)k[1] | (uint32_t)k[2] << 8 | (uint32_t)k[3] << 16 | (uint32_t)k[4] << 24;
}

void repl_streams_ranges(struct repl_streams *ss, const struct rc_header *h,
                         struct rc_reader *rd, double now)
{
    struct stream *st = NULL;
    for (int i = 0; i < MAX_STREAMS && !st; i++)
        if (ss->streams[i].phase == PHASE_DIGESTS && ss->streams[i].session == h->aux &&
            strlen(ss->streams[i].target) == h->origin_len &&
            memcmp(ss->streams[i].target, h->origin, h->origin_len) == 0)
            st = &ss->streams[i];
    if (!st) return; /* not ours, or too late: the requester will ask again */
    st->last_active = now;
    st->last_sent = now;
    if (h->base == 1) { /* everything */
        st->phase = PHASE_WALK;
        return;
    }
    struct rc_record rec;
    bool digests = false, leaves = false;
    while (rc_next(rd, &rec)) {
        unsigned level;
        uint32_t index;
        node_of(&rec, &level, &index);
        if (level < RDIGEST_LEAF_LEVEL) {
            if (!digests) begin_msg(ss, st, RC_KIND_DIGESTS);
            digests = true;
            append_children(ss, st, level, index);
            continue;
        }
        if (!st->leaves && !(st->leaves = calloc(RDIGEST_LEAVES / 8, 1))) continue;
        st->leaves[index >> 3] |= (uint8_t)(1u << (index & 7));
        leaves = true;
    }
    if (digests) {
        stream_send(ss, st);
    } else if (leaves) {
        st->phase = PHASE_WALK;
    } else { /* nothing differs: the transfer is over */
        stream_finish(ss, st);
        stream_end(st);
    }
}

bool repl_streams_step(struct repl_streams *ss, int64_t now_ms, double now)
{
    bool active = false;
    bool backed_up = repl_outbox_backed_up(ss->r); /* let the publisher catch up */
    for (int i = 0; i < MAX_STREAMS; i++) {
        struct stream *st = &ss->streams[i];
        if (st->phase == PHASE_DIGESTS && now - st->last_active > STREAM_IDLE_S) stream_end(st);
        if (st->phase != PHASE_WALK) continue;
        active = true;
        if (backed_up) continue;
        struct visit v = {ss, st, now_ms};
        uint64_t msgs = st->msgs;
        if (!st->begun || st->cursor != 0) {
            st->begun = true;
            store_scan(ss->store, &st->cursor, SYNC_SLICE, visit, &v);
        }
        if (st->msgs != msgs) st->last_sent = now;
        if (st->cursor != 0) {
            if (now - st->last_sent >= STREAM_KEEPALIVE_S) { /* still walking */
                if (rc_count(&st->buf) == 0) begin_msg(ss, st, RC_KIND_SYNC_DATA);
                stream_send(ss, st);
                st->last_sent = now;
            }
            continue;
        }
        stream_finish(ss, st);
        log_info("replication: sent %" PRIu64 " items to %s%s", st->items,
                 st->target[0] ? st->target : "the pool",
                 st->leaves ? " (the ranges that differ)" : "");
        stream_end(st);
    }
    return active;
}

struct repl_streams *repl_streams_create(struct repl *r, struct store *store)
{
    struct repl_streams *ss = calloc(1, sizeof *ss);
    if (!ss) return NULL;
    ss->r = r;
    ss->store = store;
    return ss;
}

void repl_streams_destroy(struct repl_streams *ss)
{
    if (!ss) return;
    for (int i = 0; i < MAX_STREAMS; i++) stream_end(&ss->streams[i]);
    free(ss);
}

void repl_streams_stats(const struct repl_streams *ss, const struct stats_visitor *v)
{
    STATS_COUNTER(v, "sync_served", "sync_served_total",
                  "State transfer requests of other nodes answered.", ss->served);
    STATS_COUNTER(v, "sync_bytes_sent", "sync_sent_bytes_total",
                  "Bytes of every transfer stream sent (answers and pushes).", ss->bytes_sent);
    STATS_COUNTER(v, "sync_digests_sent", "sync_digests_sent_total",
                  "Digest records sent in DIGESTS messages.", ss->digests_sent);
}
