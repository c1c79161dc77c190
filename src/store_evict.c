/*
 * store_evict.c - what leaves the store without a client asking: the
 * victim of an eviction at the cap, due items at the top of the TTL heap,
 * and the items a flush killed (the flush sweep).
 *
 * Owns: the choice of victims (the policies below), the evicted counters,
 * and the flush sweep's position (sweep_due, sweep_cursor in struct
 * store). Not the items: it
 * removes them through store.c (store_remove_at, store_expire_item), which
 * keeps the accounting and the digests; see store_impl.h for the seam.
 *
 * Eviction (store_evict_one), called by a write that would pass the cap:
 *   lru         sampled eviction by heat (evict_lru below);
 *   ttl         the earliest expiry in the heap (a FIFO when every item
 *               has the same TTL);
 *   noeviction  nothing: the write fails with STORE_NOMEM.
 * Expiry (store_expire_due), run by the server's expiry timer in bounded
 * slices: due items from the heap, earliest first, then a bounded step of
 * the flush sweep. Every victim is counted once, as evicted or (already
 * dead) as expired.
 */
#include "store_impl.h"

/* ---- eviction --------------------------------------------------------- */

static void evict_at(struct store *s, struct table_loc loc, int64_t now_ms)
{
    const struct item *it = table_item_at(&s->tb, loc);
    if (!is_tomb(it)) {
        if (is_expired(it, now_ms)) {
            count_expired(s, it);
        } else {
            s->evicted++;
            if (!(it->flags & ITEM_F_FETCHED)) s->evicted_unfetched++;
        }
    }
    store_remove_at(s, loc);
}

/*
 * `lru`: sampled eviction by heat. Each item counts its reads (freq,
 * saturating at ITEM_FREQ_MAX; a new item starts at 0), and its heat is
 * that count halved for every FREQ_HALF_LIFE_S since its last read. An
 * eviction takes LRU_SAMPLE uniformly random items from the index
 * (table_sample) and evicts the coldest (the first of equals, which is
 * random); while every item drawn so far was read (heat >= 1) it draws
 * LRU_SAMPLE more, up to LRU_ROUNDS times. A key read often outlives
 * everything colder, one read once (or never: a scan, a one-hit wonder of
 * a Zipf tail) goes at its first sampling, and a key no longer read cools
 * down within minutes. An item that is already dead (a tombstone, an
 * expired item) is taken at once. Measured by hit ratio (make bench-hits).
 * The sample must be uniform over the items, not tied to slot position:
 * table.c, "Sampling", says why.
 *
 * The guarantee, precisely: the victim is never hotter than any item drawn
 * for it; and an item with heat >= 1 (read within the last minute, or read
 * more often longer ago) is evicted while items of heat 0 exist only if
 * all LRU_ROUNDS * LRU_SAMPLE = 32 draws missed them: with a fraction c of
 * heat-0 items, probability (1 - c)^32 per eviction (2e-10 for c = 1/2;
 * one round alone would be (1 - c)^8, 1/256). Extra rounds are drawn only
 * when the first finds no cold item, i.e. when nearly everything is hot.
 */
#define LRU_SAMPLE 8
#define LRU_ROUNDS 4
#define FREQ_HALF_LIFE_S 60 /* an item not read this long counts half its reads */

/* Reads that still count: halved for every FREQ_HALF_LIFE_S since the last. */
static unsigned heat(const struct item *it, int64_t now_ms)
{
    int64_t idle = now_ms / 1000 - (int64_t)it->atime;
    int64_t halvings = idle > 0 ? idle / FREQ_HALF_LIFE_S : 0;
    return halvings >= 8 ? 0 : item_freq(it) >> halvings;
}

static bool evict_lru(struct store *s, const struct item *protect,
                      int64_t now_ms)
{
    struct table_loc locs[LRU_SAMPLE], best_loc = {false, 0};
    const struct item *best = NULL;
    unsigned best_heat = 0;
    for (unsigned round = 0; round < LRU_ROUNDS; round++) {
        size_t n = table_sample(&s->tb, LRU_SAMPLE, locs);
        for (size_t k = 0; k < n; k++) {
            const struct item *it = table_item_at(&s->tb, locs[k]);
            if (it == protect) continue;
            if (is_tomb(it) || is_expired(it, now_ms)) { /* dead already */
                evict_at(s, locs[k], now_ms);
                return true;
            }
            unsigned h = heat(it, now_ms);
            if (!best || h < best_heat) {
                best = it;
                best_heat = h;
                best_loc = locs[k];
            }
        }
        if (best && best_heat == 0) break; /* nothing is colder */
        if (n < LRU_SAMPLE) break;         /* that was every item */
    }
    if (best == NULL) return false;
    evict_at(s, best_loc, now_ms);
    return true;
}

/* Earliest expiry in the heap other than protect. */
static bool evict_ttl(struct store *s, const struct item *protect,
                      int64_t now_ms)
{
    struct item *victim = ttlheap_min_except(&s->heap, protect);
    if (victim == NULL) return false;
    uint64_t hash = table_item_hash(&s->tb, victim);
    evict_at(s, table_locate(&s->tb, hash, victim), now_ms);
    return true;
}

bool store_evict_one(struct store *s, const struct item *protect,
                     int64_t now_ms)
{
    switch (s->cfg.eviction) {
    case STORE_EVICT_LRU: return evict_lru(s, protect, now_ms);
    case STORE_EVICT_TTL: return evict_ttl(s, protect, now_ms);
    default: return false;
    }
}

/* ---- expiry and the flush sweep --------------------------------------- */

void store_sweep_restart(struct store *s)
{
    s->sweep_due = true;
    s->sweep_cursor = 0;
}

/*
 * One bounded step of the flush sweep: look at up to max slots, removing
 * every item below the watermark, with the index's removing walk
 * (table_walk: after a removal it looks at the same slot again, where a
 * backward shift may have brought the next entry). Returns items removed.
 */
static size_t sweep_flushed(struct store *s, int64_t now_ms, size_t max)
{
    store_flush_due(s, now_ms);
    if (!s->sweep_due) return 0;
    size_t removed = 0;
    struct table_loc loc;
    const struct item *it;
    while ((it = table_walk(&s->tb, &s->sweep_cursor, &max, &loc)) != NULL) {
        if (flushed(s, it->version, now_ms)) {
            store_remove_at(s, loc); /* the walk looks at its slot again */
            removed++;
        } else {
            table_walk_skip(&s->sweep_cursor);
        }
    }
    if (s->sweep_cursor == 0) s->sweep_due = false; /* walk complete */
    return removed;
}

size_t store_expire_due(struct store *s, int64_t now_ms, size_t max)
{
    size_t n = 0;
    struct item *it;
    while (n < max && (it = ttlheap_peek(&s->heap)) != NULL &&
           it->expire_ms <= now_ms) {
        uint64_t hash = table_item_hash(&s->tb, it);
        struct table_loc loc = table_locate(&s->tb, hash, it);
        if (is_tomb(it))
            store_remove_at(s, loc);
        else
            store_expire_item(s, hash, loc, it, now_ms);
        n++;
    }
    if (n < max) n += sweep_flushed(s, now_ms, (max - n) * 8);
    if (n) store_maybe_shrink(s);
    return n;
}

int64_t store_next_expiry(const struct store *s)
{
    const struct item *it = ttlheap_peek(&s->heap);
    int64_t next = it ? it->expire_ms : 0;
    int64_t at = s->sweep_due ? hlc_physical_ms(s->flush_ver)
                 : s->pend_ver ? hlc_physical_ms(s->pend_ver) : 0;
    if (at && (next == 0 || at < next)) next = at;
    return next;
}
