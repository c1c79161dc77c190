/* Unit tests of option parsing: defaults, both flag forms, ranges, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static enum options_result parse(struct options *o, int argc, const char **argv)
{
    /* the parser prints its errors; keep test output readable */
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    enum options_result r = options_parse(o, argc, (char **)argv);
    fclose(stderr);
    stderr = saved;
    return r;
}

static void test_defaults(void **state)
{
    (void)state;
    struct options o;
    const char *argv[] = {"vitamin"};
    unsetenv("VITAMIN_RABBITMQ_PASSWORD");
    assert_int_equal(parse(&o, 1, argv), OPTIONS_RUN);
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(o.port, 8080);
    assert_int_equal(o.memory_mib, 200);
    assert_int_equal(o.eviction, STORE_EVICT_LRU);
    assert_int_equal(o.max_value_size, 1048576);
    assert_null(o.rabbitmq_host);
    assert_int_equal(o.rabbitmq_port, 5672);
    assert_int_equal(o.rabbitmq_confirm_timeout, 30);
    assert_string_equal(o.rabbitmq_user, "guest");
    assert_string_equal(o.rabbitmq_password, "guest");
    assert_string_equal(o.rabbitmq_exchange, "vitamin");
    assert_non_null(strstr(o.node_id, ":8080"));
}

static void test_both_forms(void **state)
{
    (void)state;
    struct options o;
    const char *argv[] = {"vitamin", "--port=9000", "--memory", "8", "--eviction=ttl",
                          "--rabbitmq_host", "127.0.0.1", "--node_id=a"};
    assert_int_equal(parse(&o, 8, argv), OPTIONS_RUN);
    assert_int_equal(o.port, 9000);
    assert_int_equal(o.memory_mib, 8);
    assert_int_equal(o.eviction, STORE_EVICT_TTL);
    assert_string_equal(o.rabbitmq_host, "127.0.0.1");
    assert_string_equal(o.node_id, "a");
}

static void test_password_from_env(void **state)
{
    (void)state;
    struct options o;
    const char *argv[] = {"vitamin"};
    setenv("VITAMIN_RABBITMQ_PASSWORD", "s3cret", 1);
    assert_int_equal(parse(&o, 1, argv), OPTIONS_RUN);
    assert_string_equal(o.rabbitmq_password, "s3cret");
    unsetenv("VITAMIN_RABBITMQ_PASSWORD");
}

static void test_bad_values_exit_2(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"--port", "0"}, {"--port", "70000"}, {"--port", "80x"}, {"--memory", "0"},
        {"--memory", "abc"}, {"--memory", "-1"}, {"--eviction", "random"},
        {"--log_level", "loud"}, {"--max_connections", "0"}, {"--nope", "1"},
        {"--replication_ack", "maybe"}, {"--rabbitmq_confirm_timeout", "0"},
        {"--rabbitmq_confirm_timeout", "3601"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct options o;
        const char *argv[] = {"vitamin", bad[i][0], bad[i][1]};
        assert_int_equal(parse(&o, 3, argv), OPTIONS_EXIT_USAGE);
    }
    struct options o;
    const char *missing[] = {"vitamin", "--port"};
    assert_int_equal(parse(&o, 2, missing), OPTIONS_EXIT_USAGE);
    const char *stray[] = {"vitamin", "stray"};
    assert_int_equal(parse(&o, 2, stray), OPTIONS_EXIT_USAGE);
}

static void test_tls_flags(void **state)
{
    (void)state;
    struct options o;
    const char *def[] = {"vitamin"};
    assert_int_equal(parse(&o, 1, def), OPTIONS_RUN);
    assert_int_equal(o.rabbitmq_tls, 0);
    assert_int_equal(o.rabbitmq_tls_verify, 1);
    assert_null(o.rabbitmq_cacert);

    /* any readable file will do for the parser */
    char f[] = "/tmp/vitamin-test-options-XXXXXX";
    int fd = mkstemp(f);
    assert_true(fd >= 0);
    close(fd);
    const char *on[] = {"vitamin", "--rabbitmq_tls", "--rabbitmq_cacert", f,
                        "--rabbitmq_cert", f, "--rabbitmq_key", f};
    assert_int_equal(parse(&o, 8, on), OPTIONS_RUN);
    assert_int_equal(o.rabbitmq_tls, 1);
    assert_string_equal(o.rabbitmq_cacert, f);
    assert_string_equal(o.rabbitmq_cert, f);
    assert_string_equal(o.rabbitmq_key, f);
    assert_int_equal(o.rabbitmq_port, 5671); /* the TLS port unless given */

    const char *port[] = {"vitamin", "--rabbitmq_tls", "--rabbitmq_cacert", f,
                          "--rabbitmq_port", "5672"};
    assert_int_equal(parse(&o, 6, port), OPTIONS_RUN);
    assert_int_equal(o.rabbitmq_port, 5672);

    const char *noverify[] = {"vitamin", "--rabbitmq_tls", "--rabbitmq_tls_verify=no"};
    assert_int_equal(parse(&o, 3, noverify), OPTIONS_RUN);
    assert_int_equal(o.rabbitmq_tls_verify, 0);

    const char *bad[][8] = {
        {"vitamin", "--rabbitmq_tls"},                          /* no CA */
        {"vitamin", "--rabbitmq_tls", "--rabbitmq_cacert", f, "--rabbitmq_cert", f},
        {"vitamin", "--rabbitmq_tls", "--rabbitmq_cacert", f, "--rabbitmq_key", f},
        {"vitamin", "--rabbitmq_cacert", f},                    /* no --rabbitmq_tls */
        {"vitamin", "--rabbitmq_tls", "--rabbitmq_cacert", "/nonexistent/ca.pem"},
        {"vitamin", "--rabbitmq_tls", "--rabbitmq_tls_verify", "maybe"},
    };
    const int argc[] = {2, 6, 6, 3, 4, 4};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(&o, argc[i], bad[i]), OPTIONS_EXIT_USAGE);
    unlink(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_both_forms),
        cmocka_unit_test(test_password_from_env),
        cmocka_unit_test(test_bad_values_exit_2),
        cmocka_unit_test(test_tls_flags),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
