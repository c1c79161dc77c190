/*
 * slab.c - the cache's own allocator; see slab.h for the shape.
 *
 * Owns: the reserved range, the page table (struct page, one per page of
 * the range, in an mmap'd array the kernel fills in as it is touched), the
 * bitmap of pages in use, and the size classes. Invariants:
 *   - a page below hw is in use (its bit set) exactly when it holds chunks
 *     of a class or belongs to a run; pages at or above hw were never used;
 *   - a class page other than the drain page is on its class's partial
 *     list exactly when live < per_page; a page that empties leaves the
 *     list and the range unless it is then the list's only page (kept
 *     warm), so a class keeps at most one empty page;
 *   - a chunk of a class page is live, on the page's free list, or at or
 *     after fresh (never handed out), and live counts the first kind;
 *   - held is the sum of slab_size() over live allocations;
 *   - an emptied page (PG_EMPTY) is on the empty list, counted in
 *     pages_used and its bit set, until it is taken again or released;
 *   - the drain page (compaction's, below) is on no list: nothing is
 *     allocated from it, and it goes back to the OS when its last chunk
 *     moves out or is freed.
 *
 * A freed chunk stores the index of the next free chunk of its page in its
 * first 2 bytes. Under AddressSanitizer the rest of a free chunk is
 * poisoned, so a use after free of an item is still caught.
 */
#include "slab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NO_PAGE UINT32_MAX
#define NO_CHUNK UINT16_MAX
#define MAX_CLASSES 80
#define OS_PAGE 4096u
#define LINK_BYTES 8u /* a free chunk's link, left unpoisoned */

enum page_kind {
    PG_FREE = 0xff,     /* not in use */
    PG_RUN = 0xfe,      /* first page of a run */
    PG_RUN_TAIL = 0xfd, /* another page of a run */
    PG_EMPTY = 0xfc,    /* emptied, still in memory: next to reuse or release */
    /* below: the class index of a class page */
};

struct page {
    uint32_t prev, next;  /* partial list of its class (class pages) */
    uint32_t run_pages;   /* PG_RUN: pages in the run */
    uint32_t run_4k;      /* PG_RUN: bytes held, in 4 KiB units */
    uint16_t free_head;   /* first chunk of the free list, or NO_CHUNK */
    uint16_t fresh;       /* chunks from here on were never handed out */
    uint16_t live;        /* chunks handed out and not freed */
    uint8_t kind;         /* enum page_kind, or the class index */
    uint8_t pinned;       /* compaction met a pinned chunk here: skip it once */
};

struct size_class {
    uint32_t size;        /* bytes per chunk */
    uint16_t per_page;    /* chunks per page */
    uint32_t partial;     /* first page with room, or NO_PAGE */
    size_t pages;         /* pages of this class */
    size_t live;          /* chunks handed out */
    size_t fresh;         /* chunks of its pages never handed out */
};

struct slab {
    char *base;
    size_t npages;        /* pages in the range */
    size_t hw;            /* pages ever made writable: [0, hw) */
    struct page *pg;      /* npages entries */
    uint64_t *used;       /* one bit per page below hw */
    size_t hint;          /* no free page below bit hint * 64 */
    struct size_class cls[MAX_CLASSES];
    unsigned ncls;
    uint8_t class_of[SLAB_MAX_CHUNK / SLAB_ALIGN + 1]; /* by (size + 7) / 8 */
    uint32_t drain;       /* the page compaction empties (off its list), or NO_PAGE */
    uint32_t empty;       /* emptied pages not given back yet (PG_EMPTY,
                             linked by next), or NO_PAGE */
    size_t nempty;
    size_t pages_used;
    size_t held;
    uint64_t released;
    uint64_t moved;       /* chunks compaction moved */
};

/* ---- size classes ------------------------------------------------------ */

static uint32_t round_up(size_t n, size_t to) { return (uint32_t)((n + to - 1) / to * to); }

/* 40, 48, ... 128 by 8; 144 ... 256 by 16; then each ~1/8 larger (8-aligned),
 * up to SLAB_MAX_CHUNK: 67 classes. 40 bytes is the smallest item (item.h). */
static void build_classes(struct slab *sl)
{
    uint32_t size = 40;
    sl->ncls = 0;
    while (sl->ncls < MAX_CLASSES) {
        if (size > SLAB_MAX_CHUNK) size = SLAB_MAX_CHUNK;
        sl->cls[sl->ncls++] = (struct size_class){.size = size, .per_page = (uint16_t)(SLAB_PAGE / size), .partial = NO_PAGE};
        if (size == SLAB_MAX_CHUNK) break;
        size = size < 128 ? size + 8 : size < 256 ? size + 16 : round_up(size + size / 8, SLAB_ALIGN);
    }
    unsigned c = 0;
    for (size_t w = 0; w <= SLAB_MAX_CHUNK / SLAB_ALIGN; w++) {
        while (sl->cls[c].size < w * SLAB_ALIGN) c++;
        sl->class_of[w] = (uint8_t)c;
    }
}

/* ---- pages ------------------------------------------------------------- */

static bool page_used(const struct slab *sl, size_t p)
{
    return (sl->used[p / 64] >> (p % 64)) & 1;
}

static void mark(struct slab *sl, size_t p, size_t n, bool on)
{
    for (size_t i = p; i < p + n; i++) {
        if (on) sl->used[i / 64] |= UINT64_C(1) << (i % 64);
        else sl->used[i / 64] &= ~(UINT64_C(1) << (i % 64));
    }
}

/* The first of n free pages in a row below hw, or NO_PAGE. */
static uint32_t find_free(struct slab *sl, size_t n)
{
    size_t words = (sl->hw + 63) / 64;
    while (sl->hint < words && sl->used[sl->hint] == UINT64_MAX) sl->hint++;
    size_t start = 0, len = 0;
    for (size_t w = sl->hint; w < words; w++) {
        uint64_t u = sl->used[w];
        if (u == UINT64_MAX) {
            len = 0;
            continue;
        }
        if (n == 1 || (u == 0 && (w + 1) * 64 <= sl->hw)) { /* a word at a time */
            size_t p = w * 64 + (size_t)__builtin_ctzll(~u);
            if (n == 1) return p < sl->hw ? (uint32_t)p : NO_PAGE;
            if (len == 0) start = w * 64;
            len += 64;
            if (len >= n) return (uint32_t)start;
            continue;
        }
        for (size_t p = w * 64; p < (w + 1) * 64 && p < sl->hw; p++) {
            if (page_used(sl, p)) {
                len = 0;
                continue;
            }
            if (len++ == 0) start = p;
            if (len == n) return (uint32_t)start;
        }
    }
    return NO_PAGE;
}

/* Give n pages from p back to the OS: they read as zeros from now on. */
static void pages_put(struct slab *sl, uint32_t p, size_t n)
{
    char *at = sl->base + (size_t)p * SLAB_PAGE;
    UNPOISON(at, n * SLAB_PAGE);
    (void)madvise(at, n * SLAB_PAGE, MADV_DONTNEED);
    POISON(at, n * SLAB_PAGE);
    for (size_t i = p; i < p + n; i++) sl->pg[i].kind = PG_FREE;
    mark(sl, p, n, false);
    if (p / 64 < sl->hint) sl->hint = p / 64;
    sl->pages_used -= n;
    sl->released += n;
}

/* ---- the partial lists --------------------------------------------------- */

static void partial_push(struct slab *sl, struct size_class *c, uint32_t p)
{
    struct page *g = &sl->pg[p];
    g->prev = NO_PAGE;
    g->next = c->partial;
    if (c->partial != NO_PAGE) sl->pg[c->partial].prev = p;
    c->partial = p;
}

static void partial_unlink(struct slab *sl, struct size_class *c, uint32_t p)
{
    struct page *g = &sl->pg[p];
    if (g->prev != NO_PAGE) sl->pg[g->prev].next = g->next;
    else c->partial = g->next;
    if (g->next != NO_PAGE) sl->pg[g->next].prev = g->prev;
}

/* An empty page of class c leaves it: the next page any class takes, or
 * back to the OS by slab_release(). */
static void class_page_put(struct slab *sl, struct size_class *c, uint32_t p)
{
    c->pages--;
    c->fresh -= c->per_page - sl->pg[p].fresh;
    sl->pg[p].kind = PG_EMPTY;
    sl->pg[p].next = sl->empty;
    sl->empty = p;
    sl->nempty++;
}

/* The most recently emptied page, off the list, or NO_PAGE. */
static uint32_t empty_pop(struct slab *sl)
{
    uint32_t p = sl->empty;
    if (p != NO_PAGE) {
        sl->empty = sl->pg[p].next;
        sl->nempty--;
    }
    return p;
}

size_t slab_release(struct slab *sl, size_t max)
{
    for (size_t n = 0; n < max && sl->empty != NO_PAGE; n++) pages_put(sl, empty_pop(sl), 1);
    return sl->nempty;
}

/* The range is full: give back the emptied pages and those the classes
 * keep warm. Returns whether there was any. */
static bool release_warm(struct slab *sl)
{
    bool any = sl->empty != NO_PAGE;
    for (unsigned i = 0; i < sl->ncls; i++) {
        struct size_class *c = &sl->cls[i];
        for (uint32_t p = c->partial, next; p != NO_PAGE; p = next) {
            next = sl->pg[p].next;
            if (sl->pg[p].live) continue;
            partial_unlink(sl, c, p);
            class_page_put(sl, c, p);
            any = true;
        }
    }
    slab_release(sl, SIZE_MAX);
    return any;
}

/* n pages in a row, in use from now on, or NO_PAGE. */
static uint32_t pages_get(struct slab *sl, size_t n)
{
    if (n == 1 && sl->empty != NO_PAGE) return empty_pop(sl); /* in memory already, warm */
    uint32_t p = find_free(sl, n);
    if (p == NO_PAGE && n > sl->npages - sl->hw && release_warm(sl)) p = find_free(sl, n);
    if (p == NO_PAGE) {
        if (n > sl->npages - sl->hw) return NO_PAGE;
        if (mprotect(sl->base + sl->hw * SLAB_PAGE, n * SLAB_PAGE,
                     PROT_READ | PROT_WRITE) != 0)
            return NO_PAGE;
        p = (uint32_t)sl->hw;
        sl->hw += n;
    }
    mark(sl, p, n, true);
    sl->pages_used += n;
    return p;
}

/* ---- allocation ---------------------------------------------------------- */

static void *run_alloc(struct slab *sl, size_t size)
{
    size_t n = (size + SLAB_PAGE - 1) / SLAB_PAGE;
    if (n > UINT32_MAX) return NULL;
    uint32_t p = pages_get(sl, n);
    if (p == NO_PAGE) return NULL;
    for (size_t i = p + 1; i < p + n; i++) sl->pg[i].kind = PG_RUN_TAIL;
    struct page *g = &sl->pg[p];
    g->kind = PG_RUN;
    g->run_pages = (uint32_t)n;
    g->run_4k = (uint32_t)((size + OS_PAGE - 1) / OS_PAGE);
    sl->held += (size_t)g->run_4k * OS_PAGE;
    char *at = sl->base + (size_t)p * SLAB_PAGE;
    UNPOISON(at, size);
    return at;
}

void *slab_alloc(struct slab *sl, size_t size)
{
    if (size == 0) return NULL;
    if (size > SLAB_MAX_CHUNK) return run_alloc(sl, size);
    unsigned ci = sl->class_of[(size + SLAB_ALIGN - 1) / SLAB_ALIGN];
    struct size_class *c = &sl->cls[ci];
    uint32_t p = c->partial;
    if (p == NO_PAGE) {
        if ((p = pages_get(sl, 1)) == NO_PAGE) return NULL;
        sl->pg[p] = (struct page){.kind = (uint8_t)ci, .free_head = NO_CHUNK};
        partial_push(sl, c, p);
        c->pages++;
        c->fresh += c->per_page;
    }
    struct page *g = &sl->pg[p];
    char *page = sl->base + (size_t)p * SLAB_PAGE;
    char *chunk;
    if (g->free_head != NO_CHUNK) {
        chunk = page + (size_t)g->free_head * c->size;
        uint16_t next;
        memcpy(&next, chunk, sizeof next);
        g->free_head = next;
    } else {
        chunk = page + (size_t)g->fresh++ * c->size;
        c->fresh--;
    }
    if (++g->live == c->per_page) partial_unlink(sl, c, p);
    c->live++;
    sl->held += c->size;
    UNPOISON(chunk, c->size);
    return chunk;
}

void slab_free(struct slab *sl, void *ptr)
{
    size_t off = (size_t)((char *)ptr - sl->base);
    uint32_t p = (uint32_t)(off >> SLAB_PAGE_SHIFT);
    struct page *g = &sl->pg[p];
    if (g->kind == PG_RUN) {
        sl->held -= (size_t)g->run_4k * OS_PAGE;
        pages_put(sl, p, g->run_pages);
        return;
    }
    struct size_class *c = &sl->cls[g->kind];
    uint16_t idx = (uint16_t)((off & (SLAB_PAGE - 1)) / c->size);
    memcpy(ptr, &g->free_head, sizeof g->free_head);
    POISON((char *)ptr + LINK_BYTES, c->size - LINK_BYTES);
    g->free_head = idx;
    sl->held -= c->size;
    c->live--;
    bool was_full = g->live-- == c->per_page;
    if (p == sl->drain) { /* off the list until compaction empties it */
        if (g->live == 0) {
            sl->drain = NO_PAGE;
            class_page_put(sl, c, p);
        }
        return;
    }
    if (was_full) partial_push(sl, c, p);
    if (g->live == 0 && !(c->partial == p && g->next == NO_PAGE)) {
        partial_unlink(sl, c, p); /* empty, and not the class's only room */
        class_page_put(sl, c, p);
    }
}

size_t slab_size(const struct slab *sl, const void *ptr)
{
    const struct page *g = &sl->pg[(size_t)((const char *)ptr - sl->base) >> SLAB_PAGE_SHIFT];
    return g->kind == PG_RUN ? (size_t)g->run_4k * OS_PAGE : sl->cls[g->kind].size;
}

size_t slab_size_for(const struct slab *sl, size_t size)
{
    if (size > SLAB_MAX_CHUNK) return (size + OS_PAGE - 1) / OS_PAGE * OS_PAGE;
    return sl->cls[sl->class_of[(size + SLAB_ALIGN - 1) / SLAB_ALIGN]].size;
}

/* ---- compaction ---------------------------------------------------------- */

#define DRAIN_SCAN 64 /* pages of a list looked at for the sparsest */
#define MAX_PER_PAGE (SLAB_PAGE / 40 + 1)

/* Free chunks of class c's pages (never-used ones included). */
static size_t room(const struct size_class *c)
{
    return c->pages * c->per_page - c->live;
}

/* Is c worth compacting: free room for more than two pages of chunks, and
 * more than 1/8 of what it holds? */
static bool worth(const struct size_class *c)
{
    size_t r = room(c);
    return r > 2u * c->per_page && r > c->live / 8;
}

/* Choose the page to empty: of the class with the most free bytes that is
 * worth compacting, the sparsest of the first DRAIN_SCAN pages of its
 * list, if the other pages have room for its chunks. It leaves the list:
 * nothing is allocated from it while it drains. */
static bool pick_drain(struct slab *sl)
{
    struct size_class *best = NULL;
    for (unsigned i = 0; i < sl->ncls; i++) {
        struct size_class *c = &sl->cls[i];
        if (worth(c) && (!best || room(c) * c->size > room(best) * best->size)) best = c;
    }
    if (best == NULL) return false;
    uint32_t pick = NO_PAGE;
    unsigned seen = 0;
    for (uint32_t p = best->partial; p != NO_PAGE && seen < DRAIN_SCAN; p = sl->pg[p].next, seen++) {
        if (sl->pg[p].pinned) { /* not twice in a row */
            sl->pg[p].pinned = 0;
            continue;
        }
        if (pick == NO_PAGE || sl->pg[p].live < sl->pg[pick].live) pick = p;
    }
    if (pick == NO_PAGE) return false;
    uint16_t live = sl->pg[pick].live;
    if (room(best) - (best->per_page - live) < live) return false;
    partial_unlink(sl, best, pick);
    sl->drain = pick;
    return true;
}

size_t slab_compact(struct slab *sl, size_t max_moves, slab_move_fn move, void *arg)
{
    size_t moves = 0;
    while (moves < max_moves) {
        if (sl->drain == NO_PAGE && !pick_drain(sl)) break;
        uint32_t p = sl->drain;
        struct page *g = &sl->pg[p];
        struct size_class *c = &sl->cls[g->kind];
        if (g->live == 0) {
            sl->drain = NO_PAGE;
            class_page_put(sl, c, p);
            continue;
        }
        char *page = sl->base + (size_t)p * SLAB_PAGE;
        uint64_t is_free[(MAX_PER_PAGE + 63) / 64] = {0};
        for (uint16_t i = g->free_head; i != NO_CHUNK;) {
            is_free[i / 64] |= UINT64_C(1) << (i % 64);
            memcpy(&i, page + (size_t)i * c->size, sizeof i);
        }
        bool stuck = false;
        for (uint16_t i = 0; i < g->fresh && moves < max_moves && sl->drain == p; i++) {
            if ((is_free[i / 64] >> (i % 64)) & 1) continue;
            char *from = page + (size_t)i * c->size;
            /* into another page with room (p is off the list), never a new
             * one: writes may have filled them since p was picked */
            void *to = c->partial != NO_PAGE ? slab_alloc(sl, c->size) : NULL;
            if (to == NULL) {
                stuck = true;
                break;
            }
            memcpy(to, from, c->size);
            if (!move(arg, from, to)) { /* pinned: this page stays */
                slab_free(sl, to);
                stuck = true;
                break;
            }
            sl->moved++;
            moves++;
            slab_free(sl, from); /* the last one gives the page back */
        }
        if (stuck) { /* pinned, or no room left elsewhere: back on its list,
                      * and the next pick passes it over */
            sl->drain = NO_PAGE;
            g->pinned = 1;
            partial_push(sl, c, p);
            break;
        }
    }
    return moves;
}

/* ---- lifetime ------------------------------------------------------------ */

static void *map(size_t bytes, int prot)
{
    void *p = mmap(NULL, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

struct slab *slab_create(size_t reserve)
{
    if (reserve == 0 || reserve > SLAB_MAX_RANGE) reserve = SLAB_MAX_RANGE;
    struct slab *sl = calloc(1, sizeof *sl);
    if (sl == NULL) return NULL;
    build_classes(sl);
    sl->drain = NO_PAGE;
    sl->empty = NO_PAGE;
    for (sl->npages = reserve / SLAB_PAGE; sl->npages >= 16; sl->npages /= 2)
        if ((sl->base = map(sl->npages * SLAB_PAGE, PROT_NONE)) != NULL) break;
    if (sl->base == NULL) {
        free(sl);
        return NULL;
    }
    sl->pg = map(sl->npages * sizeof *sl->pg, PROT_READ | PROT_WRITE);
    sl->used = calloc((sl->npages + 63) / 64, sizeof *sl->used);
    if (sl->pg == NULL || sl->used == NULL) {
        slab_destroy(sl);
        return NULL;
    }
    return sl;
}

void slab_destroy(struct slab *sl)
{
    if (sl == NULL) return;
    if (sl->base) {
        UNPOISON(sl->base, sl->hw * SLAB_PAGE);
        munmap(sl->base, sl->npages * SLAB_PAGE);
    }
    if (sl->pg) munmap(sl->pg, sl->npages * sizeof *sl->pg);
    free(sl->used);
    free(sl);
}

void slab_get_stats(const struct slab *sl, struct slab_stats *out)
{
    out->reserved = sl->npages * SLAB_PAGE;
    out->pages = sl->pages_used;
    out->held_bytes = sl->held;
    out->classes = sl->ncls;
    out->pages_released = sl->released;
    out->moved = sl->moved;
    out->pages_empty = sl->nempty;
}

void slab_get_class(const struct slab *sl, unsigned i, struct slab_class_stats *out)
{
    const struct size_class *c = &sl->cls[i];
    *out = (struct slab_class_stats){c->size, c->per_page, c->pages, c->live, c->fresh};
}

char *slab_base(const struct slab *sl) { return sl->base; }
