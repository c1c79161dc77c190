/*
 * test_config.c - the config file grammar (config.h) and how options read a
 * file: every flag by name, yes/no switches, FILE:LINE errors, and the
 * command line winning over the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "options.h"

struct seen {
    char names[16][64];
    char values[16][256];
    int n;
};

static int collect(void *arg, const char *name, const char *value, const char **why)
{
    struct seen *s = arg;
    if (!strcmp(name, "refuse")) return *why = "anything but refuse", -1;
    snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    snprintf(s->values[s->n], sizeof s->values[0], "%s", value);
    s->n++;
    return 0;
}

/* Parse text (copied into a buffer with one spare byte). */
static int parse(const char *text, struct seen *s, unsigned *line, const char **why)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    memcpy(buf, text, len);
    memset(s, 0, sizeof *s);
    int rc = config_parse(buf, len, collect, s, line, why);
    free(buf);
    return rc;
}

static void test_grammar(void **state)
{
    (void)state;
    struct seen s;
    unsigned line;
    const char *why;
    assert_int_equal(parse("# a comment\n\n  port = 8081  \r\nhost=0.0.0.0# trailing\n"
                           "password = \"a \\\"quoted\\\" # value\\\\\"  # comment\n"
                           "\tlog_level\t=\tdebug", &s, &line, &why), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.names[0], "port");
    assert_string_equal(s.values[0], "8081");
    assert_string_equal(s.values[1], "0.0.0.0");
    assert_string_equal(s.values[2], "a \"quoted\" # value\\");
    assert_string_equal(s.names[3], "log_level");
    assert_string_equal(s.values[3], "debug");
    assert_int_equal(parse("empty =\n", &s, &line, &why), 0);
    assert_string_equal(s.values[0], "");

    static const struct { const char *text; unsigned line; } bad[] = {
        {"port 8080\n", 1},
        {"ok = 1\n= 2\n", 2},
        {"Port = 1\n", 1},
        {"a = \"open\n", 1},
        {"a = \"x\" junk\n", 1},
        {"a = \"\\q\"\n", 1},
        {"a = x\"y\"\n", 1},
        {"a = 1\nb = 2\nrefuse = 3\n", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        line = 0;
        why = NULL;
        assert_int_equal(parse(bad[i].text, &s, &line, &why), -1);
        assert_int_equal(line, bad[i].line);
        assert_non_null(why);
    }
}

static char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/vitamin-test-config-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static enum options_result parse_opts(struct options *o, int argc, const char **argv)
{
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    enum options_result r = options_parse(o, argc, (char **)argv);
    fclose(stderr);
    stderr = saved;
    return r;
}

static void on_diff(void *arg, const char *name, bool live)
{
    struct seen *s = arg;
    snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    snprintf(s->values[s->n], sizeof s->values[0], "%s", live ? "live" : "restart");
    s->n++;
}

static void test_options_from_file(void **state)
{
    (void)state;
    char *path = write_file("port = 9001\nmemory = 64\neviction = ttl\n"
                            "rabbitmq_host = \"127.0.0.1:5673,127.0.0.2\"\n"
                            "node_id = n1\nsync_before_serve = yes\nlog_level = warn\n");
    struct options o;
    const char *argv[] = {"vitamin", "--config", path, "--memory=32"};
    assert_int_equal(parse_opts(&o, 4, argv), OPTIONS_RUN);
    assert_int_equal(o.port, 9001);
    assert_int_equal(o.memory_mib, 32); /* the command line wins */
    assert_int_equal(o.eviction, STORE_EVICT_TTL);
    assert_int_equal(o.nbrokers, 2);
    assert_int_equal(o.brokers[0].port, 5673);
    assert_int_equal(o.brokers[1].port, 5672);
    assert_int_equal(o.sync_before_serve, 1);
    assert_int_equal(o.log_level, LOG_WARN);
    options_free(&o);

    /* a reload sees what changed, and whether it can change live */
    struct options a, b;
    const char *argv2[] = {"vitamin", "--config", path};
    assert_int_equal(parse_opts(&a, 3, argv2), OPTIONS_RUN);
    write_file("port = 9002\nmemory = 64\neviction = ttl\n"
               "rabbitmq_host = \"127.0.0.1:5673,127.0.0.2\"\n"
               "node_id = n1\nsync_before_serve = yes\nlog_level = debug\n");
    assert_int_equal(parse_opts(&b, 3, argv2), OPTIONS_RUN);
    struct seen changed;
    memset(&changed, 0, sizeof changed);
    options_diff(&a, &b, on_diff, &changed);
    assert_int_equal(changed.n, 2);
    assert_string_equal(changed.names[0], "port");
    assert_string_equal(changed.values[0], "restart");
    assert_string_equal(changed.names[1], "log_level");
    assert_string_equal(changed.values[1], "live");
    options_free(&a);
    options_free(&b);
    unlink(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    static const char *bad[] = {
        "port = 0\n", "no_such_flag = 1\n", "help = yes\n", "sync_before_serve = maybe\n",
        "memory = \"12\" x\n", "rabbitmq_host = a:99999\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = write_file(bad[i]);
        struct options o;
        const char *argv[] = {"vitamin", "--config", path};
        assert_int_equal(parse_opts(&o, 3, argv), OPTIONS_EXIT_USAGE);
        options_free(&o);
        unlink(path);
    }
    struct options o;
    const char *argv[] = {"vitamin", "--config", "/nonexistent/vitamin.conf"};
    assert_int_equal(parse_opts(&o, 3, argv), OPTIONS_EXIT_USAGE);
    options_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_options_from_file),
        cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
