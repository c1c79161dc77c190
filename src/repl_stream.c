/*
 * repl_stream.c - the serving side of state transfer: walks of the store
 * sent to a peer that asked (or pushed to the pool), the range-digest
 * replies and the key-summary step of an incremental transfer, and the key
 * summaries this node, as a requester, sends each peer that answers it.
 *
 * Owns: the streams (at most MAX_STREAMS at once: per peer, our answer to
 * its request, our push to it and our summaries for it) and their
 * counters. Loop thread only; messages leave through repl_send().
 *
 * An answer's messages to its requester are numbered 1, 2, ... (seq) and
 * carry the requester's session (aux) and the number of our last WRITES
 * batch closed when the stream began (base); the requester checks the
 * numbering (repl_sync.c). Every answer and push ends with our flush
 * watermarks (FLUSH records, if we have any) before SYNC_DONE, whatever
 * else it sent: the other side may have missed that FLUSH (it joined after
 * it, or it was lost), and items below a pending delayed flush travel as
 * they are.
 *
 *   full:         SYNC_DATA #1 (at once, maybe empty) ... SYNC_DONE (total)
 *   incremental:  DIGESTS #1: the root's 16 children (total: we take key
 *                 summaries)
 *                 <- RANGES: nodes of level L      DIGESTS: their children
 *                 <- RANGES: leaves, total 1 (key summaries follow)
 *                 <- SUMMARY #1 .. #k (base 1 on #k): the requester's
 *                    (key hash, stamps) of its items of those leaves
 *                 SYNC_DATA ...: our items of those leaves that it lacks or
 *                 holds older; WANTS: the keys it holds newer or we lack;
 *                 SYNC_DONE
 *                 <- RANGES: leaves, total 0 (a requester without key
 *                    summaries): SYNC_DATA ... SYNC_DONE, every item of them
 *                 <- RANGES: base 1, everything: the whole store
 *                 <- RANGES with no node: nothing differs -> SYNC_DONE (0)
 *   summaries:    (ours, for a peer's answer) SUMMARY #1 .. #k, base 1 on
 *                 the last: our items of the leaves that differ from it
 *   push:         SYNC_DATA ... SYNC_DONE, not numbered for anyone's
 *                 completion check: the whole store, the items of some
 *                 leaves, or those of the keys a peer asked back (WANTS)
 *
 * A walk advances SYNC_SLICE items per step, or FILTERED_SLICE when it is
 * filtered by a leaf bitmap (an incremental transfer: most items are
 * skipped after a hash; ~0.5 ms per step on the test machine), and pauses
 * while the outbox is half full. A filtered walk of a large store may find
 * nothing to send for a while (1M items take ~0.2 s, more on a loaded
 * machine, 8M over a second): after STREAM_KEEPALIVE_S without a message it
 * sends what it has, maybe an empty SYNC_DATA (or SUMMARY), so that the
 * other side, which gives up on a silent peer (repl_sync.c, and
 * STREAM_IDLE_S below), knows it is alive. An answer waiting for RANGES or
 * SUMMARY messages that do not come within STREAM_IDLE_S is dropped (the
 * requester asks again if it still cares). An answer whose requester's
 * summaries were cut (a hole in their numbers) or are more than it can
 * hold falls back to the leaves whole: it sends every item of them and
 * asks back every item of the requester's (WANTS, total 1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "ksum.h"
#include "log.h"
#include "rdigest.h"
#include "record.h"
#include "repl_internal.h"
#include "reply.h"
#include "stats.h"
#include "store.h"

#define SYNC_SLICE 2048     /* items a walk looks at per step ... */
#define FILTERED_SLICE (4 * SYNC_SLICE) /* ... or one filtered by leaves, which
                                           skips most after a hash */
#define WANTS_SLICE 65536   /* summary slots looked at per step for WANTS */
#define MAX_STREAMS 64 /* > MAX_SOURCES of repl_sync.c: a summary each, and answers */
#define STREAM_IDLE_S 30.0  /* an answer waiting for RANGES or SUMMARY this long goes */
#define STREAM_KEEPALIVE_S 1.0 /* a walk sends at least this often */
#define PACK_MAX REPL_BATCH_MAX_BYTES /* entries of one SUMS or HASHES record */
#define KEYSUMS_MAX_MIN (1u << 20) /* summaries an answer may hold at least */

enum phase {
    PHASE_OFF = 0,
    PHASE_DIGESTS, /* answer: waiting for RANGES */
    PHASE_SUMS,    /* answer: taking the requester's SUMMARY messages */
    PHASE_WALK,    /* walking the store */
    PHASE_WANTS,   /* answer: sending WANTS, then the end */
};

enum role {
    ROLE_ANSWER = 1, /* to a peer's request (session: its) */
    ROLE_PUSH,       /* our data, to a peer or the pool (session 0) */
    ROLE_SUMMARY,    /* our key summaries, for a peer's answer to us (session: ours) */
};

/* What an answer's walk learnt of a requester's summary (ksum_entry.mark). */
enum { SUM_UNSEEN = 0, SUM_SEEN, SUM_WANTED };

struct stream {
    enum phase phase;
    enum role role;
    bool begun;            /* the walk has started (cursor 0 is also the end) */
    bool keyed;            /* answer: the requester sends key summaries; only
                              what is newer goes, then WANTS */
    bool want_all;         /* answer, keyed: its summaries were cut or too many:
                              the leaves go whole, and WANTS asks for all */
    bool last;             /* summary: its last message is being sent (base 1) */
    char routing_key[REPL_QUEUE_MAX]; /* the peer's queue, "" = fanout */
    char target[RC_MAX_ID_LEN + 1];   /* the peer's node id, "" for the pool */
    uint64_t session;      /* see enum role */
    uint64_t base;         /* our WRITES seq when the stream began */
    uint64_t cursor;       /* store_scan position */
    uint64_t msgs;         /* messages sent so far (their seq) */
    uint64_t items;        /* records sent so far in SYNC_DATA (summary: key
                              summaries sent) */
    uint64_t sums_next;    /* answer, PHASE_SUMS: SUMMARY number expected next */
    size_t wants_pos;      /* answer, PHASE_WANTS: position in theirs */
    uint8_t *leaves;       /* walk only these leaves (bitmap); NULL = all */
    struct ksum *theirs;   /* answer, keyed: the requester's summaries, marked
                              by the walk (SUM_*) */
    struct ksum *asked;    /* push: only these keys (a peer asked them back);
                              NULL = every key of the leaves */
    char *pack;            /* entries of the SUMS or HASHES record being filled */
    size_t pack_len;
    double last_active;    /* ev_now of the last message from the requester */
    double last_sent;      /* ev_now the walk last sent a message (or began) */
    struct rc_buf buf;     /* message being filled */
};

struct repl_streams {
    struct repl *r;
    struct store *store;
    struct stream streams[MAX_STREAMS];
    uint64_t served, bytes_sent, digests_sent, items_sent, sums_sent, wants_sent;
};

static void stream_send(struct repl_streams *ss, struct stream *st)
{
    ss->bytes_sent += st->buf.len;
    repl_send(ss->r, &st->buf, st->routing_key, 0);
}

/* Start the stream's next message of kind, with the header fields that
 * kind carries (docs/replication.md, "Batch header"). */
static void begin_msg(struct repl_streams *ss, struct stream *st, enum rc_kind kind)
{
    struct rc_header h;
    repl_header(ss->r, kind, &h);
    h.seq = ++st->msgs;
    h.aux = st->session;
    h.base = kind == RC_KIND_SUMMARY ? st->last : st->base;
    switch (kind) {
    case RC_KIND_SYNC_DONE: h.total = st->items; break;
    case RC_KIND_DIGESTS: h.total = RC_FEATURE_KEYSUMS; break;
    case RC_KIND_WANTS: h.total = st->want_all; break;
    default: h.total = 0;
    }
    h.target = st->target;
    h.target_len = strlen(st->target);
    st->buf.len = 0;
    rc_begin(&st->buf, &h);
}

/* Send the entries packed so far (maybe none) as one message of kind: a
 * SUMMARY with a SUMS record, or a WANTS with a HASHES record. */
static void send_pack(struct repl_streams *ss, struct stream *st, enum rc_kind kind)
{
    begin_msg(ss, st, kind);
    if (st->pack_len) {
        struct rc_record rec = {.op = kind == RC_KIND_SUMMARY ? RC_OP_SUMS : RC_OP_HASHES,
                                .value = st->pack, .value_len = st->pack_len};
        rc_append(&st->buf, &rec);
    }
    st->pack_len = 0;
    stream_send(ss, st);
}

/* Room for one entry of size bytes in the pack (sending a full one first
 * as a message of kind). The pack must be allocated. */
static char *pack_room(struct repl_streams *ss, struct stream *st, size_t size, enum rc_kind kind)
{
    if (st->pack_len + size > PACK_MAX) send_pack(ss, st, kind);
    char *at = st->pack + st->pack_len;
    st->pack_len += size;
    return at;
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
    free(st->pack);
    ksum_destroy(st->theirs);
    ksum_destroy(st->asked);
    memset(st, 0, sizeof *st);
}

/* The end of an answer or a push: watermarks, SYNC_DONE, a log line. */
static void stream_done(struct repl_streams *ss, struct stream *st)
{
    stream_finish(ss, st);
    log_info("replication: sent %" PRIu64 " items to %s%s", st->items,
             st->target[0] ? st->target : "the pool",
             st->keyed && !st->want_all ? " (the keys that differ)"
             : st->asked                ? " (the keys asked back)"
             : st->leaves               ? " (the ranges that differ)"
                                        : "");
    stream_end(st);
}

/* Give up the requester's summaries: the leaves go whole, and WANTS asks
 * back every item of its. */
static void want_all(struct stream *st, const char *why)
{
    log_warn("replication: the key summaries of %s %s; sending the ranges that differ whole",
             st->target, why);
    ksum_destroy(st->theirs);
    st->theirs = NULL;
    st->want_all = true;
    st->phase = PHASE_WALK;
}

/* Does our record of a key carry a register newer than the requester's
 * summary of it (or does it lack the key)? Marks the summary: seen, or
 * wanted back when the requester holds a register newer than ours. */
static bool newer_here(struct ksum *theirs, uint64_t hash, const struct rc_record *rec)
{
    struct ksum_entry *e = ksum_find(theirs, hash);
    if (!e) return true;
    bool ours = hlc_stamp_newer(e->version, e->origin, rec->version, rec->origin_tag) ||
                hlc_stamp_newer(e->exp_version, e->exp_origin, rec->exp_version,
                                rec->exp_origin_tag);
    bool its = hlc_stamp_newer(rec->version, rec->origin_tag, e->version, e->origin) ||
               hlc_stamp_newer(rec->exp_version, rec->exp_origin_tag, e->exp_version,
                               e->exp_origin);
    e->mark = its ? SUM_WANTED : SUM_SEEN;
    return ours;
}

struct visit {
    struct repl_streams *ss;
    struct stream *st;
    int64_t now;
};

static void visit(void *arg, const struct item *it)
{
    struct visit *v = arg;
    struct stream *st = v->st;
    uint64_t hash = 0;
    if (st->leaves || st->theirs || st->asked || st->role == ROLE_SUMMARY)
        hash = rdigest_key_hash(item_key(it), it->key_len);
    if (st->leaves && !rdigest_bitmap_has(st->leaves, rdigest_leaf_of_hash(hash))) return;
    struct rc_record rec;
    record_of_item(it, v->now, &rec);
    if (st->role == ROLE_SUMMARY) {
        struct rc_sum sum = {hash, rec.version, rec.origin_tag, rec.exp_version,
                             rec.exp_origin_tag};
        rc_sum_put(pack_room(v->ss, st, RC_SUM_SIZE, RC_KIND_SUMMARY), &sum);
        st->items++;
        v->ss->sums_sent++;
        return;
    }
    if (st->theirs && !newer_here(st->theirs, hash, &rec)) return;
    if (st->asked && !ksum_find(st->asked, hash)) return;
    if (rc_count(&st->buf) == 0) begin_msg(v->ss, st, RC_KIND_SYNC_DATA);
    if (rc_append(&st->buf, &rec) == 0) {
        st->items++;
        v->ss->items_sent++;
    }
    if (st->buf.len >= REPL_BATCH_MAX_BYTES) stream_send(v->ss, st);
}

/* The stream of role to routing_key, restarted; NULL if all are busy. A
 * new request restarts the answer to that requester's last one, a push the
 * push to the same place, a summary the summary for the same peer; none
 * touches the other roles. */
static struct stream *stream_open(struct repl_streams *ss, enum role role,
                                  const char *routing_key, const char *target,
                                  size_t target_len, uint64_t session, double now)
{
    struct stream *st = NULL;
    for (int i = 0; i < MAX_STREAMS && !st; i++)
        if (ss->streams[i].phase && ss->streams[i].role == role &&
            strcmp(ss->streams[i].routing_key, routing_key) == 0)
            st = &ss->streams[i];
    for (int i = 0; i < MAX_STREAMS && !st; i++)
        if (!ss->streams[i].phase) st = &ss->streams[i];
    if (!st) {
        log_warn("replication: too many state-transfer streams at once; not opening another");
        return NULL;
    }
    stream_end(st);
    st->role = role;
    snprintf(st->routing_key, sizeof st->routing_key, "%s", routing_key);
    memcpy(st->target, target, target_len);
    st->target[target_len] = '\0';
    st->session = session;
    st->last_sent = now;
    st->base = repl_writes_seq(ss->r);
    st->last_active = now;
    return st;
}

/* A copy of a leaf bitmap into st->leaves. Returns 0, or -1 on ENOMEM. */
static int copy_leaves(struct stream *st, const uint8_t *leaves)
{
    if (!leaves) return 0;
    if (!(st->leaves = malloc(RDIGEST_BITMAP_BYTES))) return -1;
    memcpy(st->leaves, leaves, RDIGEST_BITMAP_BYTES);
    return 0;
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
    struct stream *st =
        stream_open(ss, ROLE_ANSWER, routing_key, target, target_len, session, now);
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
                       size_t target_len, const uint8_t *leaves, struct ksum *asked,
                       double now)
{
    struct stream *st = stream_open(ss, ROLE_PUSH, routing_key, target, target_len, 0, now);
    if (!st || copy_leaves(st, leaves) != 0) {
        ksum_destroy(asked);
        if (st) stream_end(st);
        return;
    }
    st->asked = asked;
    st->phase = PHASE_WALK;
    if (asked && ksum_count(asked) == 0) st->begun = true; /* nothing to walk for */
}

bool repl_streams_summarize(struct repl_streams *ss, const char *routing_key,
                            const char *target, size_t target_len, uint64_t session,
                            const uint8_t *leaves, double now)
{
    struct stream *st =
        stream_open(ss, ROLE_SUMMARY, routing_key, target, target_len, session, now);
    if (!st) return false;
    if (copy_leaves(st, leaves) != 0 || !(st->pack = malloc(PACK_MAX))) {
        stream_end(st);
        return false;
    }
    st->phase = PHASE_WALK;
    return true;
}

/* The stream of role for target's session, in phase (any phase but idle
 * when phase is PHASE_OFF); NULL if none. */
static struct stream *stream_find(const struct repl_streams *ss, enum role role,
                                  enum phase phase, const char *target, size_t target_len,
                                  uint64_t session)
{
    for (int i = 0; i < MAX_STREAMS; i++) {
        const struct stream *st = &ss->streams[i];
        if (st->phase && (!phase || st->phase == phase) && st->role == role &&
            st->session == session && strlen(st->target) == target_len &&
            memcmp(st->target, target, target_len) == 0)
            return (struct stream *)st;
    }
    return NULL;
}

bool repl_streams_summarizing(const struct repl_streams *ss, const char *target,
                              size_t target_len, uint64_t session)
{
    return stream_find(ss, ROLE_SUMMARY, PHASE_OFF, target, target_len, session) != NULL;
}

/* Our answer to h->origin's session h->aux, if it is in phase. */
static struct stream *answer_of(struct repl_streams *ss, const struct rc_header *h,
                                enum phase phase)
{
    return stream_find(ss, ROLE_ANSWER, phase, h->origin, h->origin_len, h->aux);
}

/* Read a NODE record's level and index. */
static void node_of(const struct rc_record *rec, unsigned *level, uint32_t *index)
{
    const unsigned char *k = (const unsigned char *)rec->key;
    *level = k[0];
    *index = (uint32_t)k[1] | (uint32_t)k[2] << 8 | (uint32_t)k[3] << 16 | (uint32_t)k[4] << 24;
}

/* The requester will send its key summaries of the leaves in st->leaves
 * (nleaves of them): make room for about as many as we hold there. */
static void expect_summaries(struct repl_streams *ss, struct stream *st, size_t nleaves)
{
    struct store_stats sst;
    store_get_stats(ss->store, &sst);
    uint64_t held = sst.curr_items + sst.tombstones;
    size_t max = held * 2 > KEYSUMS_MAX_MIN ? (size_t)held * 2 : KEYSUMS_MAX_MIN;
    size_t expect = (size_t)(held * nleaves / RDIGEST_LEAVES) + held / 64 + 64;
    st->keyed = true;
    st->sums_next = 1;
    st->phase = PHASE_SUMS;
    if (!(st->theirs = ksum_create(max, expect))) want_all(st, "cannot be held");
}

void repl_streams_ranges(struct repl_streams *ss, const struct rc_header *h,
                         struct rc_reader *rd, double now)
{
    struct stream *st = answer_of(ss, h, PHASE_DIGESTS);
    if (!st) return; /* not ours, or too late: the requester will ask again */
    st->last_active = now;
    st->last_sent = now;
    if (h->base == 1) { /* everything */
        st->phase = PHASE_WALK;
        return;
    }
    struct rc_record rec;
    bool digests = false;
    size_t leaves = 0;
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
        if (!st->leaves && !(st->leaves = calloc(RDIGEST_BITMAP_BYTES, 1))) continue;
        rdigest_bitmap_add(st->leaves, index);
        leaves++;
    }
    if (digests) {
        stream_send(ss, st);
    } else if (leaves && h->total == 1) {
        expect_summaries(ss, st, leaves);
    } else if (leaves) {
        st->phase = PHASE_WALK;
    } else { /* nothing differs: the transfer is over */
        stream_finish(ss, st);
        stream_end(st);
    }
}

void repl_streams_summary(struct repl_streams *ss, const struct rc_header *h,
                          struct rc_reader *rd, double now)
{
    struct stream *st = answer_of(ss, h, PHASE_SUMS);
    if (!st) return; /* not ours, too late, or given up */
    st->last_active = now;
    if (h->seq < st->sums_next) return; /* a copy of one we have */
    if (h->seq > st->sums_next) return want_all(st, "lost messages");
    st->sums_next++;
    struct rc_record rec;
    while (rc_next(rd, &rec))
        for (size_t i = 0; i < rec.value_len / RC_SUM_SIZE; i++) {
            struct rc_sum s;
            rc_sum_get(&rec, i, &s);
            struct ksum_entry e = {.hash = s.hash, .version = s.version,
                                   .origin = s.origin_tag, .exp_version = s.exp_version,
                                   .exp_origin = s.exp_origin_tag};
            if (ksum_put(st->theirs, &e) != 0) return want_all(st, "are more than we hold");
        }
    if (h->base == 1) { /* the last one: walk */
        st->phase = PHASE_WALK;
        st->last_sent = now;
    }
}

/* One step of an answer's WANTS: the hashes of the requester's summaries
 * that our walk found newer than ours or did not meet. */
static void wants_step(struct repl_streams *ss, struct stream *st)
{
    if (st->want_all || !st->theirs) {
        begin_msg(ss, st, RC_KIND_WANTS); /* total 1: every item of the leaves */
        stream_send(ss, st);
        return stream_done(ss, st);
    }
    if (!st->pack && !(st->pack = malloc(PACK_MAX))) {
        st->want_all = true; /* the next step asks for all */
        return;
    }
    struct ksum_entry *e;
    size_t end = st->wants_pos + WANTS_SLICE;
    while ((e = ksum_next(st->theirs, &st->wants_pos, end)))
        if (e->mark != SUM_SEEN) {
            rc_hash_put(pack_room(ss, st, RC_HASH_SIZE, RC_KIND_WANTS), e->hash);
            ss->wants_sent++;
        }
    if (!ksum_done(st->theirs, st->wants_pos)) return;
    if (st->pack_len) send_pack(ss, st, RC_KIND_WANTS);
    stream_done(ss, st);
}

/* A walk is over. */
static void walk_done(struct repl_streams *ss, struct stream *st)
{
    if (st->role == ROLE_SUMMARY) {
        st->last = true;
        send_pack(ss, st, RC_KIND_SUMMARY);
        log_info("replication: sent %" PRIu64 " key summaries of the ranges that differ to %s",
                 st->items, st->target);
        stream_end(st);
    } else if (st->keyed) {
        if (rc_count(&st->buf)) stream_send(ss, st); /* its last items */
        st->phase = PHASE_WANTS;
    } else {
        stream_done(ss, st);
    }
}

bool repl_streams_step(struct repl_streams *ss, int64_t now_ms, double now)
{
    bool active = false;
    bool backed_up = repl_outbox_backed_up(ss->r); /* let the publisher catch up */
    for (int i = 0; i < MAX_STREAMS; i++) {
        struct stream *st = &ss->streams[i];
        if ((st->phase == PHASE_DIGESTS || st->phase == PHASE_SUMS) &&
            now - st->last_active > STREAM_IDLE_S)
            stream_end(st);
        if (st->phase != PHASE_WALK && st->phase != PHASE_WANTS) continue;
        active = true;
        if (backed_up) continue;
        if (st->phase == PHASE_WANTS) {
            wants_step(ss, st);
            continue;
        }
        struct visit v = {ss, st, now_ms};
        uint64_t msgs = st->msgs;
        if (!st->begun || st->cursor != 0) {
            st->begun = true;
            store_scan(ss->store, &st->cursor, st->leaves ? FILTERED_SLICE : SYNC_SLICE, visit,
                       &v);
        }
        if (st->msgs != msgs) st->last_sent = now;
        if (st->cursor == 0) {
            walk_done(ss, st);
        } else if (now - st->last_sent >= STREAM_KEEPALIVE_S) { /* still walking */
            if (st->role == ROLE_SUMMARY) {
                send_pack(ss, st, RC_KIND_SUMMARY);
            } else {
                if (rc_count(&st->buf) == 0) begin_msg(ss, st, RC_KIND_SYNC_DATA);
                stream_send(ss, st);
            }
            st->last_sent = now;
        }
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
                  "Bytes of every transfer stream sent (answers, pushes, key summaries).",
                  ss->bytes_sent);
    STATS_COUNTER(v, "sync_digests_sent", "sync_digests_sent_total",
                  "Digest records sent in DIGESTS messages.", ss->digests_sent);
    STATS_COUNTER(v, "sync_items_sent", "sync_items_sent_total",
                  "Items and tombstones sent in transfer streams (answers and pushes).",
                  ss->items_sent);
    STATS_COUNTER(v, "sync_summaries_sent", "sync_summaries_sent_total",
                  "Key summaries sent to peers answering this node's transfers.",
                  ss->sums_sent);
    STATS_COUNTER(v, "sync_wants_sent", "sync_wants_sent_total",
                  "Keys asked back from requesters that hold them newer or that this node lacks.", ss->wants_sent);
}
