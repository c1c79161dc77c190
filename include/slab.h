/*
 * slab.h - the cache's own allocator: chunks of a few dozen size classes,
 * carved from 64 KiB pages of one reserved address range, each named by a
 * 4-byte id (its offset in the range / 8).
 *
 * Owns: the address range, its pages and the per-page bookkeeping; never
 * what the chunks hold. Single-threaded: the store is its only user.
 *
 *   range (reserved once, PROT_NONE; pages made writable as the high-water
 *   mark rises, given back to the OS with MADV_DONTNEED when empty):
 *
 *   | page 0: class 6 | page 1: run of 3 ...          | page 4: class 0 | ...
 *   | 88|88|88|..|free|  one item of 140 KiB           | 40|40|40|...    |
 *
 * A request of up to SLAB_MAX_CHUNK (a page) gets a chunk of the smallest
 * class that holds it (classes step by 8 bytes up to 128, by 16 up to 256,
 * then by ~1/8): no header per chunk, at most ~12% rounding. A larger one
 * gets a run of whole pages of its own, of which only the bytes it uses
 * are ever touched, so it costs its size rounded up to 4 KiB. Either way
 * an allocation takes at most twice its cost of address range, so a range
 * of twice the store's cap cannot run out while the cap holds.
 *
 * Each class keeps a list of its pages that have a free chunk; a page
 * hands out chunks it never used (in address order) or ones freed back to
 * it (its own free list, threaded through the free chunks). A page whose
 * last chunk is freed leaves its class, unless it is the only page of its
 * class with room (kept, so a class that sways between 0 and 1 item does
 * not fault a page in and out on every write); it is the next page taken,
 * or goes back to the OS through slab_release(), a bounded number a call. Pages that
 * deletes left sparse are emptied by moving their chunks (slab_compact).
 */
#ifndef VITAMIN_SLAB_H
#define VITAMIN_SLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLAB_ALIGN 8u                  /* every chunk and run starts 8-aligned */
#define SLAB_PAGE_SHIFT 16
#define SLAB_PAGE ((size_t)1 << SLAB_PAGE_SHIFT)
#define SLAB_MAX_CHUNK ((uint32_t)SLAB_PAGE) /* larger: a run of pages */
#define SLAB_MAX_RANGE ((size_t)UINT32_MAX * SLAB_ALIGN) /* ids are 32 bits */

struct slab;

struct slab_stats {
    size_t reserved;        /* bytes of address range */
    size_t pages;           /* pages in use by chunks or runs */
    size_t held_bytes;      /* what slab_size() says of every live allocation */
    size_t classes;         /* size classes */
    uint64_t pages_released;/* pages given back to the OS so far */
    uint64_t moved;         /* chunks slab_compact moved */
    size_t pages_empty;     /* of pages: emptied, not given back yet */
};

/* Reserve a range of up to reserve bytes (0: SLAB_MAX_RANGE; less if the
 * OS refuses that much address space). NULL if none can be had. */
struct slab *slab_create(size_t reserve);
/* Unmap everything: every chunk is gone. */
void slab_destroy(struct slab *sl);

/* size bytes, 8-aligned, or NULL (size 0, or no address range left). */
void *slab_alloc(struct slab *sl, size_t size);
/* p came from slab_alloc of sl and was not freed yet. */
void slab_free(struct slab *sl, void *p);
/* Bytes p holds of memory: its class's chunk, or its run's bytes rounded
 * up to 4 KiB. */
size_t slab_size(const struct slab *sl, const void *p);
/* What slab_size() will say of an allocation of size bytes, beforehand. */
size_t slab_size_for(const struct slab *sl, size_t size);

void slab_get_stats(const struct slab *sl, struct slab_stats *out);

/* Give up to max emptied pages back to the OS (MADV_DONTNEED, a few µs
 * each); returns how many are still waiting. A class page that empties
 * waits for this, so a burst of frees (an expiry wave) costs no system
 * call, and the next page any class needs is one of them. */
size_t slab_release(struct slab *sl, size_t max);

struct slab_class_stats {
    uint32_t chunk_size;
    uint32_t per_page;      /* chunks per page */
    size_t pages;           /* pages of the class */
    size_t used;            /* chunks handed out */
    size_t fresh;           /* chunks of its pages never handed out yet */
};
/* Class i, 0 <= i < slab_stats.classes, smallest first. */
void slab_get_class(const struct slab *sl, unsigned i, struct slab_class_stats *out);

/*
 * Compaction. Freed chunks are reused only by their own class, so when
 * sizes shift, or deletes leave pages sparse, a class can hold far more
 * pages than its chunks need. slab_compact() empties such pages: of the
 * class with the most free room (more than two pages' worth and more than
 * 1/8 of what it holds), it takes a sparse page off its list, copies each
 * of its live chunks into a free chunk of another page of the class and
 * calls move(arg, from, to): the owner points every reference at to and
 * returns true, or returns false to keep from (pinned; to is freed and the
 * page goes back on its list). from is then freed, and the page goes back
 * to the OS once empty. At most max_moves moves; returns how many were
 * made (max_moves: there may be more to do).
 */
typedef bool (*slab_move_fn)(void *arg, const void *from, void *to);
size_t slab_compact(struct slab *sl, size_t max_moves, slab_move_fn move, void *arg);

/* Where the range starts: ids are relative to it (see slab_id). */
char *slab_base(const struct slab *sl);

static inline uint32_t slab_id(const char *base, const void *p)
{
    return (uint32_t)(((const char *)p - base) / SLAB_ALIGN);
}

static inline void *slab_ptr(const char *base, uint32_t id)
{
    return (void *)(base + (size_t)id * SLAB_ALIGN);
}

#endif
