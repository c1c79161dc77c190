/*
 * config.c - the config file's grammar (see config.h). One pass over the
 * buffer, line by line; a value is unescaped where it stands.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

static bool blank(char c) { return c == ' ' || c == '\t'; }

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parse one line [p, end) (no '\n'); NUL-terminates name and value in
 * place. Returns 0 (a setting: *name set), 1 (blank or comment), -1. */
static int parse_line(char *p, char *end, char **name, char **value, const char **why)
{
    if (end > p && end[-1] == '\r') end--;
    while (p < end && blank(*p)) p++;
    if (p == end || *p == '#') return 1;
    *name = p;
    while (p < end && name_char(*p)) p++;
    char *name_end = p;
    if (name_end == *name) return *why = "a setting name (lowercase letters, digits, _)", -1;
    while (p < end && blank(*p)) p++;
    if (p == end || *p != '=') return *why = "'=' after the setting name", -1;
    p++;
    while (p < end && blank(*p)) p++;
    *value = p;
    if (p < end && *p == '"') { /* quoted: unescape in place */
        char *out = p;
        for (p++;; p++) {
            if (p == end) return *why = "a closing '\"'", -1;
            if (*p == '"') break;
            if (*p == '\\') {
                if (p + 1 == end || (p[1] != '"' && p[1] != '\\'))
                    return *why = "\\\" or \\\\ after a backslash", -1;
                p++;
            }
            *out++ = *p;
        }
        *out = '\0';
        for (p++; p < end && blank(*p); p++) {}
        if (p < end && *p != '#') return *why = "nothing after the closing '\"' but a comment", -1;
    } else {
        char *stop = p;
        while (stop < end && *stop != '#' && *stop != '"') stop++;
        if (stop < end && *stop == '"') return *why = "quotes around the whole value", -1;
        while (stop > p && blank(stop[-1])) stop--;
        *stop = '\0';
    }
    *name_end = '\0';
    return 0;
}

int config_parse(char *text, size_t len, config_setting_fn fn, void *arg, unsigned *line,
                 const char **why)
{
    text[len] = '\0';
    char *p = text, *end = text + len;
    for (*line = 1; p < end; (*line)++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        char *name = NULL, *value = NULL;
        int rc = parse_line(p, stop, &name, &value, why);
        if (rc < 0) return -1;
        if (rc == 0 && fn(arg, name, value, why) != 0) return -1;
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}
