/*
 * rdigest.c - the range digest tree (see rdigest.h). One allocation holds
 * every level, root first.
 */
#include "rdigest.h"

#include <stdlib.h>
#include <xxhash.h>

static size_t nodes_total(void)
{
    size_t n = 0;
    for (unsigned l = 0; l < RDIGEST_LEVELS; l++) n += rdigest_width(l);
    return n;
}

size_t rdigest_bytes(void)
{
    return nodes_total() * sizeof(uint64_t);
}

int rdigest_init(struct rdigest *d)
{
    uint64_t *all = calloc(nodes_total(), sizeof *all);
    if (!all) return -1;
    for (unsigned l = 0; l < RDIGEST_LEVELS; l++) {
        d->level[l] = all;
        all += rdigest_width(l);
    }
    return 0;
}

void rdigest_free(struct rdigest *d)
{
    free(d->level[0]);
    for (unsigned l = 0; l < RDIGEST_LEVELS; l++) d->level[l] = NULL;
}

uint64_t rdigest_key_hash(const char *key, size_t key_len)
{
    return XXH3_64bits(key, key_len);
}

uint32_t rdigest_leaf_of(const char *key, size_t key_len)
{
    return rdigest_leaf_of_hash(rdigest_key_hash(key, key_len));
}
