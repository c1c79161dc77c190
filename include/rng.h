/*
 * rng.h - xorshift64, the one small pseudo-random generator the server
 * uses where unpredictability is not required (random samples of the
 * index, RANDOMKEY's starting bucket). Not for anything an attacker may
 * want to guess: seeds that must be secret come from getrandom().
 *
 * Owns: nothing; the caller keeps the state (never 0).
 */
#ifndef VITAMIN_RNG_H
#define VITAMIN_RNG_H

#include <stdint.h>

static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

#endif
