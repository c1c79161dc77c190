/*
 * auth.h - the client password (--password), shared by every protocol.
 *
 * Owns: the password bytes. One instance per server; the protocols hold a
 * pointer, so a new password (SIGHUP) applies to all of them at once.
 * Comparison takes the same time whatever part of a guess is right.
 */
#ifndef VITAMIN_AUTH_H
#define VITAMIN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_MAX_LEN 1023

struct auth {
    char password[AUTH_MAX_LEN + 1];
    size_t len;
    bool enabled; /* a password is set: clients must authenticate */
};

/* Set (password non-NULL) or clear the password. Returns false if it is
 * longer than AUTH_MAX_LEN (nothing changes). */
bool auth_set(struct auth *a, const char *password);
/* Does guess match? Always false when no password is set. */
bool auth_check(const struct auth *a, const char *guess, size_t len);

#endif
