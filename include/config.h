/*
 * config.h - the syntax of a config file (--config): `name = value` lines.
 *
 * Owns: the grammar only; what a name means is options.c's. Pure: it works
 * on a writable buffer holding the whole file and rewrites values in place
 * (NUL-terminated, quotes and escapes removed), so they stay valid as long
 * as the buffer does.
 *
 *   file    := line*
 *   line    := blanks [ name blanks '=' blanks value blanks ] [ '#' comment ] '\n'
 *   name    := [a-z0-9_]+            (a flag's name, without the dashes)
 *   value   := bare | quoted
 *   bare    := any bytes but '#', '"' and '\n', trailing blanks dropped
 *   quoted  := '"' (any byte but '"', '\\' and '\n' | '\\' ('"' | '\\'))* '"'
 *
 * blanks are spaces and tabs; a '\r' before '\n' is dropped.
 */
#ifndef VITAMIN_CONFIG_H
#define VITAMIN_CONFIG_H

#include <stddef.h>

/*
 * Called for each setting, in file order. Returns 0, or -1 with *why set
 * to what was expected (parsing stops there).
 */
typedef int (*config_setting_fn)(void *arg, const char *name, const char *value,
                                 const char **why);

/*
 * Parse text[0..len) (which must have room for one more byte: text[len] is
 * overwritten with a NUL). Returns 0, or -1 with *line (1-based) and *why
 * set: a syntax error, or the callback's refusal.
 */
int config_parse(char *text, size_t len, config_setting_fn fn, void *arg, unsigned *line,
                 const char **why);

#endif
