/*
 * repl_sync.c - state transfer, the asking side: getting the pool's data
 * when this node joins or lost some, and anti-entropy rounds. The serving
 * side (walks and digest replies) is repl_stream.c.
 *
 * Owns: this node's transfer (session, sources, retries), the timer that
 * drives streams and deadlines, the anti-entropy rounds, and the counters.
 * Loop thread only; it reaches the broker through repl_send() and learns
 * about messages through repl_sync_on_message(), both in repl.c.
 *
 * Requesting. Our SYNC_REQUEST goes to the fanout: every peer answers
 * (repl_stream.c). A node with an empty store asks for a full transfer; a
 * node with data asks for an incremental one: the peer sends its digests
 * of the range tree's top (rdigest.h), we compare them with ours and ask
 * (RANGES) for the children of the nodes that differ, level by level,
 * down to the leaves that differ. Then, below the leaf, key summaries: we
 * send the peer (SUMMARY) the hash and the two stamps of each of our keys
 * in those leaves; it sends us its items we lack or hold older, asks back
 * (WANTS) the keys we hold newer or it lacks, and at its SYNC_DONE we push
 * it those. So only the keys that differ travel, both ways (LWW decides per
 * key). A peer that does not take key summaries (its DIGESTS say so) gets
 * the old step instead: we ask for every item of those leaves and push it
 * ours. If more than a quarter of all leaves differ, a full transfer is
 * cheaper: we ask for everything and push everything.
 *
 * Completion. RabbitMQ brings our request back to our own queue too (the
 * echo), which proves the round trip works. Per answering peer (a source)
 * we check that its messages arrive numbered without a hole and that
 * SYNC_DONE's total matches the records received. The transfer is
 *   complete  when the echo came back, every source finished intact, and no
 *             new source started for SYNC_GRACE_S after the echo;
 *   retried   (new session, backoff 1 s doubling to 16 s) when a source has
 *             a hole or a wrong total, stalls for SYNC_STALL_S, the consumer
 *             reconnected meanwhile, or no answer came although peers exist;
 *   over with no peer only when nothing from any other node has ever been
 *             seen, while our own messages kept coming back (the echo and
 *             more than SYNC_ALONE_ECHOES beacons over SYNC_WAIT_S): the
 *             pool's first node. A silent link proves nothing and is waited
 *             out. Data from an incomplete transfer is kept (it merges by
 *             LWW); only the completion is withheld.
 * On completion, each source's (incarnation, base) tells repl.c which of
 * that peer's batches the transfer covered (repl_peer_covered). A request
 * made while a transfer runs (a gap past what it covers) is run after it.
 *
 * Anti-entropy. Every anti_entropy_s, a node that is idle (repl_idle)
 * publishes its root digest (ROOT). A node that is idle too and finds its
 * root different from a peer's for two rounds in a row runs an incremental
 * transfer: whatever made them diverge, it heals in bounded time. Repairs
 * are counted and logged; a healthy pool repairs nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ksum.h"
#include "log.h"
#include "rdigest.h"
#include "repl_internal.h"
#include "reply.h"
#include "stats.h"
#include "store.h"

#define SYNC_STREAM_PERIOD 0.001 /* s between steps while streaming */
#define SYNC_IDLE_PERIOD 0.25    /* s between checks otherwise */
#define SYNC_WAIT_S 3.0          /* with no answer at all, wait this long */
#define SYNC_GRACE_S 1.0         /* after the echo, for every peer to start */
#define SYNC_STALL_S 5.0         /* a source silent this long has failed */
#define SYNC_ALONE_ECHOES 2      /* own beacons back before "no peer" */
#define SYNC_BACKOFF_MIN 1.0
#define SYNC_BACKOFF_MAX 16.0
#define MAX_SOURCES 32
#define MAX_AE_PEERS 64
#define AE_ROUNDS 2              /* rounds a root must differ before a repair */
#define WANTS_SLACK 65536        /* keys a peer may ask back beyond what we hold
                                    (written while it walked) */

/* A peer answering our current request. */
struct source {
    char id[RC_MAX_ID_LEN + 1];
    uint64_t incarnation, base;
    uint64_t next_seq;     /* the message number expected next */
    uint64_t records;      /* records received */
    double last_msg;       /* ev_now of its last message (or of the end of
                              our summaries for it, which it waits for) */
    bool done, failed;
    bool keysums;          /* it takes key summaries (its DIGESTS said so) */
    bool keyed;            /* we send it ours: at its SYNC_DONE, push it
                              what it asked back */
    bool want_all;         /* it asked back every item of the leaves */
    uint8_t *leaves;       /* the leaves that differ from it (bitmap) */
    struct ksum *asked;    /* the key hashes it asked back (WANTS) */
};

/* A peer's anti-entropy state: rounds its root differed from ours. */
struct ae_peer {
    char id[RC_MAX_ID_LEN + 1];
    unsigned differed;
};

struct repl_sync {
    struct repl *r;
    struct ev_loop *loop;
    struct store *store;
    struct repl_streams *streams;
    ev_timer timer;        /* drives streams, the transfer's deadlines, rounds */
    double ae_interval;    /* seconds between anti-entropy rounds; 0 = off */
    double ae_next;        /* ev_now of the next round */
    /* this node's transfer */
    bool waiting;          /* a request is out and not yet complete */
    bool incremental;      /* it asked for digests first */
    bool synced_once;      /* the first transfer after start has ended */
    bool need_push;        /* our writes were dropped: push our store */
    bool reconnected;      /* the consumer reconnected during the wait */
    bool asked_unverified; /* asked again for peers that did not answer */
    const char *again;     /* why another transfer is needed once this one
                              ends (a gap past its base), or NULL */
    uint64_t session;
    double requested_at, echo_at; /* echo_at 0: not yet seen */
    double started_at;     /* the first request of this transfer */
    double backoff, retry_at;     /* retry_at 0: no retry scheduled */
    unsigned echoes;       /* own messages back since the request */
    bool peer_seen;        /* any other node's message, ever */
    struct source sources[MAX_SOURCES];
    size_t nsources;
    struct ae_peer ae[MAX_AE_PEERS];
    size_t nae;
    /* counters */
    uint64_t started, completed, retried, failed, alone, items;
    uint64_t full, incr, compared, requested_leaves, bytes_received, last_ms;
    uint64_t ae_rounds, ae_repairs;
};

static void kick(struct repl_sync *y)
{
    ev_timer_set(&y->timer, 0.0, SYNC_STREAM_PERIOD);
    ev_timer_again(y->loop, &y->timer);
}

/* ---- this node's transfer ------------------------------------------------ */

static void send_request(struct repl_sync *y, double now);

static void finish(struct repl_sync *y, bool alone)
{
    double now = ev_now(y->loop);
    y->waiting = false;
    y->retry_at = 0;
    y->backoff = 0;
    if (alone) {
        y->alone++;
        log_info("replication: state transfer found no other node in the pool "
                 "(our own messages come back, nobody else's): starting as its first node");
    } else {
        for (size_t i = 0; i < y->nsources; i++) {
            const struct source *so = &y->sources[i];
            repl_peer_covered(y->r, so->id, strlen(so->id), so->incarnation, so->base);
        }
        /* a peer whose batches we saw but that did not answer (our request
         * reached the pool before its queue existed): ask once more before
         * calling what it sent before a gap */
        if (repl_peers_unverified(y->r) && !y->asked_unverified) {
            y->asked_unverified = true;
            y->waiting = true;
            log_info("replication: a peer did not answer the state transfer; asking again");
            send_request(y, now);
            return;
        }
        y->completed++;
        y->last_ms = (uint64_t)((now - y->started_at) * 1000.0);
        log_info("replication: %s state transfer complete (%zu peers answered, %" PRIu64
                 " ms)", y->incremental ? "incremental" : "full", y->nsources, y->last_ms);
    }
    bool first = !y->synced_once;
    y->synced_once = true;
    y->asked_unverified = false;
    repl_transfer_ended(y->r, first);
    const char *again = y->again;
    y->again = NULL;
    if (again && !y->waiting) repl_sync_request(y, again);
}

/* Forget the sources of the last attempt. */
static void sources_clear(struct repl_sync *y)
{
    for (size_t i = 0; i < y->nsources; i++) {
        free(y->sources[i].leaves);
        ksum_destroy(y->sources[i].asked);
    }
    y->nsources = 0;
}

static void send_request(struct repl_sync *y, double now)
{
    do { /* 0 names a push (repl_stream.c) */
        if (getrandom(&y->session, sizeof y->session, 0) != sizeof y->session)
            y->session = (uint64_t)(now * 1e6) ^ (uint64_t)(uintptr_t)y;
    } while (y->session == 0);
    y->waiting = true;
    y->requested_at = now;
    y->echo_at = 0;
    y->echoes = 0;
    y->reconnected = false;
    y->retry_at = 0;
    sources_clear(y);
    struct store_stats ss;
    store_get_stats(y->store, &ss);
    y->incremental = ss.curr_items + ss.tombstones > 0;
    if (y->incremental) y->incr++;
    else y->full++;
    struct rc_header h;
    repl_header(y->r, RC_KIND_SYNC_REQUEST, &h);
    h.aux = y->session;
    h.base = y->incremental;
    struct rc_buf b = {0};
    if (rc_begin(&b, &h) == 0) repl_send(y->r, &b, "", 0);
    kick(y);
}

void repl_sync_request(struct repl_sync *y, const char *why)
{
    if (y->waiting) { /* it may not cover what made this one needed: later */
        y->again = why;
        return;
    }
    double now = ev_now(y->loop);
    log_info("replication: state transfer requested (%s)", why);
    y->started++;
    y->started_at = now;
    if (y->need_push) repl_streams_push(y->streams, "", "", 0, NULL, NULL, now);
    y->need_push = false;
    send_request(y, now);
}

/* Give up on the current attempt and ask again after a backoff. */
static void retry(struct repl_sync *y, const char *why)
{
    double now = ev_now(y->loop);
    y->backoff = y->backoff ? y->backoff * 2 : SYNC_BACKOFF_MIN;
    if (y->backoff > SYNC_BACKOFF_MAX) y->backoff = SYNC_BACKOFF_MAX;
    y->retry_at = now + y->backoff;
    y->retried++;
    log_warn("replication: state transfer incomplete (%s); asking again in %.0f s", why,
             y->backoff);
}

static struct source *source_find(struct repl_sync *y, const char *id, size_t len)
{
    for (size_t i = 0; i < y->nsources; i++)
        if (strlen(y->sources[i].id) == len && memcmp(y->sources[i].id, id, len) == 0)
            return &y->sources[i];
    if (y->nsources == MAX_SOURCES) return NULL;
    struct source *so = &y->sources[y->nsources++];
    memset(so, 0, sizeof *so);
    memcpy(so->id, id, len);
    so->next_seq = 1;
    return so;
}

static void source_failed(struct repl_sync *y, struct source *so)
{
    so->failed = true;
    y->failed++;
}

/* A RANGES message to source so: the nodes in nodes[0..n) of level, or
 * (everything) the whole store; keyed: our key summaries of these leaves
 * follow. */
static void send_ranges(struct repl_sync *y, const struct source *so, unsigned level,
                        const uint32_t *nodes, size_t n, bool everything, bool keyed)
{
    char queue[REPL_QUEUE_MAX];
    if (repl_queue_of(y->r, so->id, strlen(so->id), queue, sizeof queue) != 0) return;
    struct rc_header h;
    repl_header(y->r, RC_KIND_RANGES, &h);
    h.aux = y->session;
    h.base = everything;
    h.total = keyed;
    h.target = so->id;
    h.target_len = strlen(so->id);
    struct rc_buf b = {0};
    if (rc_begin(&b, &h) != 0) return;
    for (size_t i = 0; i < n && !everything; i++) {
        char key[RC_NODE_KEY_LEN] = {(char)level, (char)nodes[i], (char)(nodes[i] >> 8),
                                     (char)(nodes[i] >> 16), (char)(nodes[i] >> 24)};
        struct rc_record rec = {.op = RC_OP_NODE, .key = key, .key_len = sizeof key};
        rc_append(&b, &rec);
    }
    repl_send(y->r, &b, queue, 0);
}

/* The leaves in diff[0..n) differ from source so's: send it our key
 * summaries of them if it takes them, else ask for their items and push
 * it ours. */
static void leaves_differ(struct repl_sync *y, struct source *so, const uint32_t *diff,
                          size_t n)
{
    char queue[REPL_QUEUE_MAX];
    double now = ev_now(y->loop);
    if (repl_queue_of(y->r, so->id, strlen(so->id), queue, sizeof queue) != 0) return;
    if (!so->leaves && !(so->leaves = malloc(RDIGEST_BITMAP_BYTES))) return; /* it stalls */
    memset(so->leaves, 0, RDIGEST_BITMAP_BYTES);
    for (size_t i = 0; i < n; i++) rdigest_bitmap_add(so->leaves, diff[i]);
    y->requested_leaves += n;
    /* the summaries' stream first: RANGES promise them (total = 1), and
     * with no stream free the whole-leaf step still completes */
    so->keyed = so->keysums && repl_streams_summarize(y->streams, queue, so->id,
                                                      strlen(so->id), y->session,
                                                      so->leaves, now);
    send_ranges(y, so, RDIGEST_LEAF_LEVEL, diff, n, false, so->keyed);
    if (!so->keyed)
        repl_streams_push(y->streams, queue, so->id, strlen(so->id), so->leaves, NULL, now);
}

/* The peer's digests of some nodes' children: ask for the children that
 * differ from ours, one level down; at the leaves, go below them. */
static void on_digests(struct repl_sync *y, struct source *so, struct rc_reader *rd)
{
    size_t cap = 0, n = 0;
    uint32_t *diff = NULL;
    unsigned child_level = 0;
    struct rc_record rec;
    while (rc_next(rd, &rec)) {
        const unsigned char *k = (const unsigned char *)rec.key;
        const unsigned char *v = (const unsigned char *)rec.value;
        unsigned level = k[0];
        uint32_t index = (uint32_t)k[1] | (uint32_t)k[2] << 8 | (uint32_t)k[3] << 16 |
                         (uint32_t)k[4] << 24;
        if (level >= RDIGEST_LEAF_LEVEL || rec.value_len != RDIGEST_FANOUT * 8) continue;
        child_level = level + 1;
        for (uint32_t c = 0; c < RDIGEST_FANOUT; c++) {
            uint64_t theirs = 0;
            for (int b = 7; b >= 0; b--) theirs = theirs << 8 | v[c * 8 + (unsigned)b];
            uint32_t child = index * RDIGEST_FANOUT + c;
            y->compared++;
            if (store_range_digest(y->store, child_level, child) == theirs) continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                uint32_t *nd = realloc(diff, ncap * sizeof *nd);
                if (!nd) break;
                diff = nd;
                cap = ncap;
            }
            diff[n++] = child;
        }
    }
    char queue[REPL_QUEUE_MAX];
    if (child_level < RDIGEST_LEAF_LEVEL || n == 0) {
        send_ranges(y, so, child_level, diff, n, false, false);
    } else if (n > RDIGEST_LEAVES / 4) { /* most of it differs: copy it all */
        send_ranges(y, so, 0, NULL, 0, true, false);
        if (repl_queue_of(y->r, so->id, strlen(so->id), queue, sizeof queue) == 0)
            repl_streams_push(y->streams, queue, so->id, strlen(so->id), NULL, NULL,
                              ev_now(y->loop));
    } else {
        leaves_differ(y, so, diff, n);
    }
    free(diff);
}

/* Keys source so asks back (WANTS, in answer to our key summaries). */
static void on_wants(struct repl_sync *y, struct source *so, const struct rc_header *h,
                     struct rc_reader *rd)
{
    if (!so->keyed || so->want_all) return;
    if (h->total == 1) { /* every item of the leaves */
        so->want_all = true;
        return;
    }
    if (!so->asked) {
        struct store_stats ss;
        store_get_stats(y->store, &ss);
        size_t held = (size_t)(ss.curr_items + ss.tombstones);
        so->asked = ksum_create(held + WANTS_SLACK, 0); /* it can only want what we hold */
        if (!so->asked) {
            so->want_all = true;
            return;
        }
    }
    struct rc_record rec;
    while (rc_next(rd, &rec))
        for (size_t i = 0; i < rec.value_len / RC_HASH_SIZE; i++) {
            struct ksum_entry e = {.hash = rc_hash_get(&rec, i)};
            if (ksum_put(so->asked, &e) != 0) { /* push it all rather than too little */
                ksum_destroy(so->asked);
                so->asked = NULL;
                so->want_all = true;
                return;
            }
        }
}

/* Source so's answer to our key summaries is complete: push it the keys it
 * asked back (all of the leaves if it said so), then our flush watermarks. */
static void push_asked(struct repl_sync *y, struct source *so)
{
    char queue[REPL_QUEUE_MAX];
    if (repl_queue_of(y->r, so->id, strlen(so->id), queue, sizeof queue) != 0) return;
    struct ksum *asked = NULL;
    if (!so->want_all) {
        asked = so->asked ? so->asked : ksum_create(0, 0); /* empty: nothing asked */
        so->asked = NULL;
        if (!asked) return;
    }
    repl_streams_push(y->streams, queue, so->id, strlen(so->id), so->leaves, asked,
                      ev_now(y->loop));
}

/* A DIGESTS, WANTS, SYNC_DATA or SYNC_DONE message of our session from a
 * peer. */
static void on_answer(struct repl_sync *y, const struct rc_header *h, struct rc_reader *rd,
                      size_t len)
{
    struct source *so = source_find(y, h->origin, h->origin_len);
    if (!so || so->done || so->failed) return;
    y->bytes_received += len;
    so->last_msg = ev_now(y->loop);
    so->incarnation = h->incarnation;
    so->base = h->base;
    if (h->seq != so->next_seq) {
        source_failed(y, so);
        log_warn("replication: state transfer from %s lost messages (got #%" PRIu64
                 ", expected #%" PRIu64 ")", so->id, h->seq, so->next_seq);
        return;
    }
    so->next_seq++;
    if (h->kind == RC_KIND_DIGESTS) {
        so->keysums = h->total & RC_FEATURE_KEYSUMS;
        return on_digests(y, so, rd);
    }
    if (h->kind == RC_KIND_WANTS) return on_wants(y, so, h, rd);
    so->records += h->count;
    if (h->kind != RC_KIND_SYNC_DONE) return;
    if (so->records != h->total) {
        source_failed(y, so);
        log_warn("replication: state transfer from %s incomplete: %" PRIu64 " of %" PRIu64
                 " records arrived", so->id, so->records, h->total);
        return;
    }
    so->done = true;
    if (so->keyed) push_asked(y, so);
}

/* ---- anti-entropy ---------------------------------------------------------- */

static void send_root(struct repl_sync *y)
{
    uint64_t root = store_range_digest(y->store, 0, 0);
    unsigned char v[8];
    for (int b = 0; b < 8; b++) v[b] = (unsigned char)(root >> (8 * b));
    char key[RC_NODE_KEY_LEN] = {0};
    struct rc_record rec = {.op = RC_OP_NODE, .key = key, .key_len = sizeof key,
                            .value = (const char *)v, .value_len = sizeof v};
    struct rc_header h;
    repl_header(y->r, RC_KIND_ROOT, &h);
    h.aux = 1; /* sent only while idle */
    struct rc_buf b = {0};
    if (rc_begin(&b, &h) == 0 && rc_append(&b, &rec) == 0) repl_send(y->r, &b, "", 0);
    else rc_buf_free(&b);
    y->ae_rounds++;
}

static struct ae_peer *ae_find(struct repl_sync *y, const char *id, size_t len)
{
    for (size_t i = 0; i < y->nae; i++)
        if (strlen(y->ae[i].id) == len && memcmp(y->ae[i].id, id, len) == 0) return &y->ae[i];
    if (y->nae == MAX_AE_PEERS) return NULL;
    struct ae_peer *p = &y->ae[y->nae++];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, len);
    return p;
}

/* A peer's root digest: compare when both sides are quiet. */
static void on_root(struct repl_sync *y, const struct rc_header *h, struct rc_reader *rd)
{
    struct rc_record rec;
    struct ae_peer *p = ae_find(y, h->origin, h->origin_len);
    if (!p || !rc_next(rd, &rec) || rec.value_len != 8) return;
    if (h->aux != 1 || y->waiting || !repl_idle(y->r)) return; /* not comparable now */
    const unsigned char *v = (const unsigned char *)rec.value;
    uint64_t theirs = 0;
    for (int b = 7; b >= 0; b--) theirs = theirs << 8 | v[b];
    if (theirs == store_range_digest(y->store, 0, 0)) {
        p->differed = 0;
        return;
    }
    if (++p->differed < AE_ROUNDS) return;
    p->differed = 0;
    y->ae_repairs++;
    log_warn("replication: anti-entropy: our data has differed from %s's for %d rounds "
             "while both were idle; repairing by an incremental transfer", p->id, AE_ROUNDS);
    repl_sync_request(y, "anti-entropy");
}

/* ---- messages, timer ------------------------------------------------------- */

void repl_sync_on_message(struct repl_sync *y, const struct rc_header *h, struct rc_reader *rd,
                          size_t len, bool self)
{
    if (self) {
        if (!y->waiting) return;
        if (h->kind == RC_KIND_SYNC_REQUEST && h->aux == y->session && !y->echo_at)
            y->echo_at = ev_now(y->loop);
        if (y->echo_at) y->echoes++;
        return;
    }
    y->peer_seen = true;
    double now = ev_now(y->loop);
    bool for_me = repl_is_self(y->r, h->target, h->target_len);
    switch (h->kind) {
    case RC_KIND_SYNC_REQUEST: {
        char queue[REPL_QUEUE_MAX]; /* the requester's queue */
        if (repl_queue_of(y->r, h->origin, h->origin_len, queue, sizeof queue) != 0) return;
        repl_streams_request(y->streams, queue, h->origin, h->origin_len, h->aux,
                             h->base == 1, now);
        kick(y);
        return;
    }
    case RC_KIND_RANGES:
        if (for_me) repl_streams_ranges(y->streams, h, rd, now);
        kick(y);
        return;
    case RC_KIND_SUMMARY:
        if (for_me) repl_streams_summary(y->streams, h, rd, now);
        kick(y);
        return;
    case RC_KIND_ROOT:
        on_root(y, h, rd);
        return;
    case RC_KIND_DIGESTS:
    case RC_KIND_WANTS:
    case RC_KIND_SYNC_DATA:
    case RC_KIND_SYNC_DONE:
        if (y->waiting && h->aux == y->session && for_me) on_answer(y, h, rd, len);
        return;
    case RC_KIND_WRITES:
        return;
    }
}

void repl_sync_applied(struct repl_sync *y, uint64_t items)
{
    y->items += items;
}

void repl_sync_reconnected(struct repl_sync *y)
{
    if (y->waiting) y->reconnected = true;
}

void repl_sync_push(struct repl_sync *y)
{
    y->need_push = true;
}

bool repl_sync_waiting(const struct repl_sync *y)
{
    return y->waiting;
}

/* Decide, once per tick, whether the transfer under way is complete,
 * failed, or still going. */
static void check_transfer(struct repl_sync *y, double now)
{
    if (y->retry_at) {
        if (now >= y->retry_at) send_request(y, now);
        return;
    }
    bool all_done = y->nsources > 0;
    for (size_t i = 0; i < y->nsources; i++) {
        struct source *so = &y->sources[i];
        if (so->keyed && !so->done &&
            repl_streams_summarizing(y->streams, so->id, strlen(so->id), y->session))
            so->last_msg = now; /* it waits for our summaries */
        if (so->failed) return retry(y, "a peer's transfer arrived incomplete");
        if (!so->done && now - so->last_msg > SYNC_STALL_S)
            return retry(y, "a peer's transfer stalled");
        if (!so->done) all_done = false;
    }
    if (y->reconnected && !all_done) return retry(y, "the broker link was re-established");
    if (all_done && y->echo_at && now - y->echo_at >= SYNC_GRACE_S) return finish(y, false);
    if (y->nsources == 0 && now - y->requested_at >= SYNC_WAIT_S) {
        if (y->peer_seen) return retry(y, "no peer answered");
        if (y->echo_at && y->echoes > SYNC_ALONE_ECHOES) return finish(y, true);
        /* our own messages do not come back: the link is not working yet */
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct repl_sync *y = w->data;
    double now = ev_now(loop);
    if (y->need_push && !y->waiting && repl_link_up(y->r))
        repl_sync_request(y, "own writes were dropped");
    bool streaming = repl_streams_step(y->streams, (int64_t)(now * 1000.0), now);
    if (y->waiting) check_transfer(y, now);
    if (y->ae_interval > 0 && now >= y->ae_next) {
        y->ae_next = now + y->ae_interval;
        if (!y->waiting && !streaming && repl_idle(y->r) && repl_link_up(y->r)) send_root(y);
    }
    w->repeat = streaming ? SYNC_STREAM_PERIOD : SYNC_IDLE_PERIOD;
    ev_timer_again(loop, w);
}

/* ---- lifecycle and stats --------------------------------------------------- */

struct repl_sync *repl_sync_create(struct repl *r, struct ev_loop *loop, struct store *store,
                                   double anti_entropy_s)
{
    struct repl_sync *y = calloc(1, sizeof *y);
    if (!y) return NULL;
    y->streams = repl_streams_create(r, store);
    if (!y->streams) {
        free(y);
        return NULL;
    }
    y->r = r;
    y->loop = loop;
    y->store = store;
    y->ae_interval = anti_entropy_s;
    y->ae_next = ev_now(loop) + anti_entropy_s;
    ev_init(&y->timer, on_timer);
    y->timer.data = y;
    y->timer.repeat = SYNC_IDLE_PERIOD;
    ev_timer_again(loop, &y->timer);
    ev_unref(loop);
    return y;
}

void repl_sync_destroy(struct repl_sync *y)
{
    if (!y) return;
    ev_ref(y->loop);
    ev_timer_stop(y->loop, &y->timer);
    repl_streams_destroy(y->streams);
    sources_clear(y);
    free(y);
}

void repl_sync_stats(const struct repl_sync *y, const struct stats_visitor *v)
{
    STATS_COUNTER(v, "sync_started", "sync_started_total", "State transfers started.",
                  y->started);
    STATS_COUNTER(v, "sync_completed", "sync_completed_total",
                  "State transfers that passed the completion check.", y->completed);
    STATS_COUNTER(v, "sync_retried", "sync_retried_total",
                  "State transfer attempts given up and asked again.", y->retried);
    STATS_COUNTER(v, "sync_failed", "sync_failed_total",
                  "Transfer sources whose stream had a hole or a wrong total.", y->failed);
    STATS_COUNTER(v, "sync_alone", "sync_alone_total",
                  "State transfers that found no other node.", y->alone);
    STATS_COUNTER(v, "sync_full", "sync_full_total",
                  "Requests for a full state transfer (retries included).", y->full);
    STATS_COUNTER(v, "sync_incremental", "sync_incremental_total",
                  "Requests for an incremental state transfer (retries included).", y->incr);
    STATS_COUNTER(v, "sync_items", "sync_items_total", "Transfer records applied.", y->items);
    STATS_COUNTER(v, "sync_ranges_compared", "sync_ranges_compared_total",
                  "Range digests compared with a peer's.", y->compared);
    STATS_COUNTER(v, "sync_leaves_requested", "sync_leaves_requested_total",
                  "Leaf ranges asked from a peer because they differed.", y->requested_leaves);
    STATS_COUNTER(v, "sync_bytes_received", "sync_received_bytes_total",
                  "Bytes of this node's own transfers received.", y->bytes_received);
    STATS_NUMBER(v, "sync_last_ms", STATS_KIND_GAUGE, "sync_last_duration_seconds",
                 STATS_UNIT_MS, STATS_FMT_DEC, "Duration of the last completed transfer.",
                 y->last_ms);
    STATS_COUNTER(v, "anti_entropy_rounds", "anti_entropy_rounds_total",
                  "Anti-entropy digest rounds.", y->ae_rounds);
    STATS_COUNTER(v, "anti_entropy_repairs", "anti_entropy_repairs_total",
                  "Anti-entropy rounds that started a repair.", y->ae_repairs);
    repl_streams_stats(y->streams, v);
}
