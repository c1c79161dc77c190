/*
 * glob.h - Redis-compatible glob matching (KEYS, SCAN MATCH, CONFIG GET).
 *
 * Owns: the pattern language of Redis's stringmatchlen(), over byte strings
 * given with their lengths (binary-safe: NUL is an ordinary byte in both the
 * pattern and the string). Pure function, no allocation, no recursion.
 *
 *   *       any run of bytes (consecutive stars count as one)
 *   ?       any one byte
 *   [abc]   one byte of the set;  [^abc] one byte not in it
 *   [a-z]   a range, either way round ([z-a] is [a-z]); "[a-]" is the range
 *           'a'..']' (the ']' is taken as the range end, as in Redis), and
 *           "[a-c-e]" is the range a-c, then '-' and 'e'
 *   \x      the byte x literally, also inside [...]; a '\' that ends the
 *           pattern (or the class) is a literal backslash
 *   [       an unterminated class ends with the pattern: "[ab" is "[ab]"
 *   []      matches nothing; [^] matches any byte; "[]a]" is the empty class
 *           followed by "a]"
 *   nocase  ASCII letters compare case-insensitively (also range ends,
 *           lowered after ordering them, as Redis does); an escaped byte
 *           inside a class is compared exactly, as in Redis
 *
 * All of the above was checked against redis-server 7.0.15 (KEYS, and
 * CONFIG GET for nocase). Differences from Redis, on purpose:
 *  - Range ends compare as unsigned bytes. Redis compares C chars, which are
 *    signed on x86 and unsigned on ARM, so there "[a-\xff]" means different
 *    things on different machines (on x86 it matches 0x00..'a' and 0xff);
 *    here it is 'a'..0xff, as on ARM.
 *  - Redis limits the recursion of nested stars (newer releases give up with
 *    "no match" past 1000 levels). This matcher does not recurse: it keeps
 *    one backtrack point (the last star), which is enough because every
 *    other element matches exactly one byte, so the answer is always exact.
 *    Time is O(plen * slen) at worst, memory O(1): no pattern is
 *    exponential (Redis CVE-2022-36021) or deep (CVE-2024-31228).
 *    A long [...] class is re-read at each backtrack step, so a caller that
 *    wants a tighter bound should cap the pattern length.
 *
 * Like stringmatchlen(), glob_match() says an empty string matches only the
 * empty pattern ("*" does not match ""). KEYS and SCAN take a shortcut for
 * the pattern "*" that does match every key, the empty one included:
 * glob_matches_all() tells the caller when to take it.
 */
#ifndef VITAMIN_GLOB_H
#define VITAMIN_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Does str[0..slen) match pat[0..plen)? */
bool glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase);

/* Is the pattern exactly "*" (Redis's KEYS/SCAN match-everything shortcut)? */
bool glob_matches_all(const char *pat, size_t plen);

#endif
