/*
 * num.h - decimal integers as the protocols write them: strict parsing and
 * formatting. Pure functions over bytes (not NUL-terminated).
 */
#ifndef VITAMIN_NUM_H
#define VITAMIN_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUM_MAX_DIGITS 20 /* "-9223372036854775808" or "18446744073709551615" */

/* Signed 64-bit decimal in Redis's strict form: an optional '-', then "0"
 * or digits without a leading zero; no '+', no blanks, nothing else.
 * Returns false if s is not one or does not fit. */
bool num_parse_i64(const char *s, size_t len, int64_t *out);

/* Unsigned 64-bit decimal: 1..20 digits, nothing else (leading zeros are
 * fine). Returns false if s is not one or does not fit. */
bool num_parse_u64(const char *s, size_t len, uint64_t *out);

/* Decimal text of v into buf (NUM_MAX_DIGITS bytes; no NUL is written).
 * Returns its length. */
size_t num_format_i64(char *buf, int64_t v);
size_t num_format_u64(char *buf, uint64_t v);

#endif
