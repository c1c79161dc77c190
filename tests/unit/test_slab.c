/*
 * test_slab.c - the cache's allocator: size classes, reuse of freed chunks
 * and pages, memory given back to the OS (seen by mincore, not by the
 * allocator's own counters), ids, and a random workload checked against a
 * shadow copy of what every live allocation holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rng.h"
#include "slab.h"

static struct slab_stats stats(const struct slab *sl)
{
    struct slab_stats st;
    slab_get_stats(sl, &st);
    return st;
}

/* OS pages of [p, p + len) resident in memory. */
static size_t resident(const void *p, size_t len)
{
    size_t os = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = (len + os - 1) / os;
    unsigned char *vec = malloc(n);
    assert_non_null(vec);
    assert_int_equal(mincore((void *)p, len, vec), 0);
    size_t r = 0;
    for (size_t i = 0; i < n; i++) r += vec[i] & 1;
    free(vec);
    return r;
}

/* Every size gets a chunk at least that big, 8-aligned, with bounded
 * rounding; classes never shrink as sizes grow. */
static void test_size_classes(void **state)
{
    (void)state;
    struct slab *sl = slab_create(64u << 20);
    assert_non_null(sl);
    assert_null(slab_alloc(sl, 0));
    size_t prev = 0;
    for (size_t size = 1; size <= SLAB_MAX_CHUNK + 10000; size += size < 600 ? 1 : 37) {
        void *p = slab_alloc(sl, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % SLAB_ALIGN, 0);
        size_t got = slab_size(sl, p);
        assert_int_equal(got, slab_size_for(sl, size));
        assert_true(got >= size);
        assert_true(got >= prev);
        if (size >= 40 && size <= SLAB_MAX_CHUNK)
            assert_true(got <= size + size / 8 + SLAB_ALIGN); /* <= ~12.5% */
        else if (size > SLAB_MAX_CHUNK)
            assert_true(got < size + 4096 && got % 4096 == 0);
        if (size <= 128) assert_true(got <= (size < 40 ? 40 : size + 7));
        memset(p, 0xa5, size); /* it is all writable */
        prev = got;
        slab_free(sl, p);
    }
    struct slab_stats st = stats(sl);
    assert_true(st.classes > 20 && st.classes < 80);
    assert_int_equal(st.held_bytes, 0);
    slab_destroy(sl);
}

/* A freed chunk is the next one handed out for its class; a page that has
 * room is filled before a new page is taken. */
static void test_reuse(void **state)
{
    (void)state;
    struct slab *sl = slab_create(64u << 20);
    assert_non_null(sl);
    void *a = slab_alloc(sl, 88), *b = slab_alloc(sl, 88);
    assert_true((char *)b - (char *)a == 88); /* one page, address order */
    struct slab_class_stats k = {0};
    for (unsigned i = 0; i < stats(sl).classes && k.chunk_size != 88; i++) slab_get_class(sl, i, &k);
    assert_int_equal(k.chunk_size, 88);
    assert_int_equal(k.pages, 1);
    assert_int_equal(k.used, 2);
    assert_int_equal(k.per_page, SLAB_PAGE / 88);
    assert_int_equal(k.fresh, k.per_page - 2); /* never handed out */
    slab_free(sl, a);
    assert_ptr_equal(slab_alloc(sl, 81), a); /* same class */
    slab_free(sl, b);
    assert_ptr_equal(slab_alloc(sl, 88), b);

    enum { N = 20000 };
    void **v = calloc(N, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < N; i++) assert_non_null(v[i] = slab_alloc(sl, 200));
    size_t pages = stats(sl).pages;
    for (size_t i = 0; i < N; i += 2) slab_free(sl, v[i]); /* every other one */
    assert_int_equal(stats(sl).pages, pages);               /* no page is empty */
    for (size_t i = 0; i < N; i += 2) assert_non_null(v[i] = slab_alloc(sl, 200));
    assert_int_equal(stats(sl).pages, pages); /* the holes were filled */
    for (size_t i = 0; i < N; i++) slab_free(sl, v[i]);
    /* all but the warm one of this class (the 88 B class holds a, b) */
    assert_int_equal(stats(sl).pages_empty, pages - 2);
    /* emptied pages serve another class before any new page, unreleased */
    for (size_t i = 0; i < N; i++) assert_non_null(v[i] = slab_alloc(sl, 1000));
    struct slab_stats st = stats(sl);
    assert_true(st.pages <= (size_t)N * 1024 / SLAB_PAGE + 2);
    assert_int_equal(st.pages_released, 0);
    assert_int_equal(st.pages_empty, 0);
    for (size_t i = 0; i < N; i++) slab_free(sl, v[i]);
    free(v);
    slab_destroy(sl);
}

/* Pages whose chunks are all freed leave memory: mincore sees them gone.
 * One empty page per class may stay (kept warm). Runs go back whole. */
static void test_return_to_os(void **state)
{
    (void)state;
    struct slab *sl = slab_create(256u << 20);
    assert_non_null(sl);
    enum { N = 100000 };
    void **v = calloc(N, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < N; i++) {
        assert_non_null(v[i] = slab_alloc(sl, 100));
        memset(v[i], (int)i, 100);
    }
    void *big = slab_alloc(sl, 3 * SLAB_PAGE + 100);
    assert_non_null(big);
    memset(big, 1, 3 * SLAB_PAGE + 100);
    const char *base = slab_base(sl);
    struct slab_stats st = stats(sl);
    size_t span = st.pages * SLAB_PAGE;
    size_t os = (size_t)sysconf(_SC_PAGESIZE);
    size_t before = resident(base, span);
    assert_true(before * os >= (size_t)N * 100); /* the data is in memory */

    for (size_t i = 0; i < N; i++) slab_free(sl, v[i]);
    slab_free(sl, big);
    st = stats(sl);
    assert_true(st.pages_empty > 0); /* emptied, waiting: no system call yet */
    assert_true(resident(base, span) * os >= (size_t)N * 100 / 2);
    size_t waiting = st.pages_empty;
    assert_int_equal(slab_release(sl, 10), waiting - 10); /* a bounded step */
    assert_int_equal(slab_release(sl, SIZE_MAX), 0);
    st = stats(sl);
    assert_int_equal(st.held_bytes, 0);
    assert_true(st.pages <= 1);        /* the class's warm page at most */
    assert_true(st.pages_released >= (size_t)N * 104 / SLAB_PAGE);
    assert_true(resident(base, span) * os <= SLAB_PAGE); /* gone from RSS */
    free(v);
    slab_destroy(sl);
}

/* ids name allocations; the range ends where its reservation does. */
static void test_ids_and_exhaustion(void **state)
{
    (void)state;
    struct slab *sl = slab_create(16 * SLAB_PAGE); /* a tiny range */
    assert_non_null(sl);
    const char *base = slab_base(sl);
    void *p = slab_alloc(sl, 500);
    assert_non_null(p);
    assert_ptr_equal(slab_ptr(base, slab_id(base, p)), p);
    size_t n = 0;
    while (slab_alloc(sl, SLAB_PAGE) != NULL) n++; /* one page each */
    assert_int_equal(n, 15);
    assert_null(slab_alloc(sl, 2 * SLAB_PAGE));
    assert_non_null(slab_alloc(sl, 500)); /* its page still has room */
    slab_destroy(sl);
}

/* A full range gives back the empty pages classes keep warm before it
 * refuses; compaction never takes a new page. */
static void test_full_range(void **state)
{
    (void)state;
    struct slab *sl = slab_create(16 * SLAB_PAGE);
    assert_non_null(sl);
    void *p[16];
    struct slab_class_stats k;
    for (unsigned i = 0; i < 16; i++) { /* one chunk in each of 16 classes */
        slab_get_class(sl, i, &k);
        assert_non_null(p[i] = slab_alloc(sl, k.chunk_size));
    }
    assert_int_equal(stats(sl).pages, 16);
    slab_get_class(sl, 16, &k);
    assert_null(slab_alloc(sl, k.chunk_size)); /* a 17th class: no page left */
    for (unsigned i = 0; i < 16; i++) slab_free(sl, p[i]);
    assert_int_equal(stats(sl).pages, 16); /* each class keeps its page warm */
    void *run = slab_alloc(sl, 8 * SLAB_PAGE);
    assert_non_null(run); /* the warm pages went back for it */
    assert_int_equal(stats(sl).pages, 8);
    slab_free(sl, run);
    slab_destroy(sl);
}

struct shadow {
    unsigned char *p;
    size_t size;
    unsigned char fill;
};

/* Random sizes (small, medium, runs), random frees: every live allocation
 * keeps its bytes (no two overlap), held_bytes is the sum of slab_size,
 * and freeing all leaves at most one warm page per class. */
static void test_random_against_shadow(void **state)
{
    (void)state;
    struct slab *sl = slab_create(512u << 20);
    assert_non_null(sl);
    enum { SLOTS = 3000 };
    struct shadow *sh = calloc(SLOTS, sizeof *sh);
    assert_non_null(sh);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    size_t held = 0;
    for (int step = 0; step < 60000; step++) {
        struct shadow *s = &sh[rng_next(&rng) % SLOTS];
        if (s->p) {
            for (size_t i = 0; i < s->size; i++) assert_int_equal(s->p[i], s->fill);
            held -= slab_size(sl, s->p);
            slab_free(sl, s->p);
            s->p = NULL;
            continue;
        }
        uint64_t r = rng_next(&rng);
        s->size = r % 100 == 0 ? 8192 + r % 200000 : r % 10 == 0 ? 300 + r % 8000 : 40 + r % 200;
        s->fill = (unsigned char)(step | 1);
        s->p = slab_alloc(sl, s->size);
        assert_non_null(s->p);
        memset(s->p, s->fill, s->size);
        held += slab_size(sl, s->p);
        assert_int_equal(stats(sl).held_bytes, held);
    }
    for (size_t k = 0; k < SLOTS; k++) {
        struct shadow *s = &sh[k];
        if (!s->p) continue;
        for (size_t i = 0; i < s->size; i++) assert_int_equal(s->p[i], s->fill);
        slab_free(sl, s->p);
    }
    slab_release(sl, SIZE_MAX);
    struct slab_stats st = stats(sl);
    assert_int_equal(st.held_bytes, 0);
    assert_true(st.pages <= st.classes);
    free(sh);
    slab_destroy(sl);
}

/* Compaction: allocations tagged with their index; move() repoints the
 * shadow, refusing the one index that is pinned. */
struct moves {
    unsigned char **ptr; /* by index */
    size_t pinned;       /* index move() refuses, or SIZE_MAX */
    size_t calls;
};

static bool move_tagged(void *arg, const void *from, void *to)
{
    struct moves *m = arg;
    size_t idx;
    memcpy(&idx, (const char *)from + 8, sizeof idx);
    assert_ptr_equal(m->ptr[idx], from);
    m->calls++;
    if (idx == m->pinned) return false;
    assert_memory_equal(from, to, 200); /* the slab copied it */
    m->ptr[idx] = to;
    return true;
}

/* Deletes leave pages sparse: compaction moves what is left into fewer
 * pages and gives the rest back, every byte kept; a pinned chunk keeps its
 * page, the others go on. */
static void test_compaction(void **state)
{
    (void)state;
    struct slab *sl = slab_create(64u << 20);
    assert_non_null(sl);
    enum { N = 20000, KEEP = 10 };
    unsigned char **ptr = calloc(N, sizeof *ptr);
    assert_non_null(ptr);
    for (size_t i = 0; i < N; i++) {
        assert_non_null(ptr[i] = slab_alloc(sl, 200));
        memset(ptr[i], (int)(i % 251), 200);
        memcpy(ptr[i] + 8, &i, sizeof i);
    }
    struct moves m = {ptr, SIZE_MAX, 0};
    assert_int_equal(slab_compact(sl, 1000, move_tagged, &m), 0); /* dense: nothing to do */
    size_t full = stats(sl).pages;
    for (size_t i = 0; i < N; i++)
        if (i % KEEP) {
            slab_free(sl, ptr[i]);
            ptr[i] = NULL;
        }
    assert_int_equal(stats(sl).pages, full); /* every page still has a live chunk */
    size_t held = stats(sl).held_bytes;

    m.pinned = N - KEEP; /* on the last page, the sparsest: drained first */
    unsigned char *pinned_at = ptr[m.pinned];
    size_t moved = 0, n;
    for (int calls = 0; calls < 1000; calls++) moved += slab_compact(sl, 100, move_tagged, &m);
    slab_release(sl, SIZE_MAX);
    size_t pinned_pages = stats(sl).pages;
    assert_ptr_equal(ptr[m.pinned], pinned_at); /* it stayed */
    assert_true(m.calls > moved);               /* it was refused */
    assert_true(pinned_pages < full / 4);       /* the other pages went on */
    m.pinned = SIZE_MAX;
    while ((n = slab_compact(sl, 100, move_tagged, &m)) > 0) moved += n;

    struct slab_stats st = stats(sl);
    size_t per_page = SLAB_PAGE / slab_size(sl, ptr[0]);
    size_t need = (N / KEEP + per_page - 1) / per_page;
    assert_true(moved > 0 && st.moved == moved);
    assert_true(pinned_pages >= st.pages);
    assert_int_equal(st.held_bytes, held);
    slab_release(sl, SIZE_MAX);
    st = stats(sl);
    /* within the 1/8 + two pages compaction leaves */
    assert_true(st.pages <= need + need / 8 + 3);
    assert_true(st.pages < full / 4);
    for (size_t i = 0; i < N; i += KEEP) {
        size_t idx;
        memcpy(&idx, ptr[i] + 8, sizeof idx);
        assert_int_equal(idx, i);
        assert_int_equal(ptr[i][0], i % 251);
        assert_int_equal(ptr[i][199], i % 251);
        slab_free(sl, ptr[i]);
    }
    slab_release(sl, SIZE_MAX);
    assert_true(stats(sl).pages <= 1);
    free(ptr);
    slab_destroy(sl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_classes),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_return_to_os),
        cmocka_unit_test(test_ids_and_exhaustion),
        cmocka_unit_test(test_random_against_shadow),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_full_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
