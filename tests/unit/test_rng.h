/*
 * test_rng.h - the unit tests' random numbers: xorshift64 from a state the
 * test sets (never 0), so that a failing test fails the same way again.
 */
#ifndef VITAMIN_TEST_RNG_H
#define VITAMIN_TEST_RNG_H

#include <stdint.h>

#include "rng.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static inline uint64_t rnd(void)
{
    return rng_next(&rng_state);
}

#endif
