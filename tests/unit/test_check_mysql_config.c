/* test_check_mysql_config.c: the mysql check's keys: defaults, password sources, cross-key errors with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_CHECK_TYPE "mysql"
#define TEST_CHECK_NAME "db"
#include "check_config.h"

static struct hd_config *expect_valid(const char *keys, const char *target)
{
	char *error = NULL;
	struct hd_config *cfg = parse_check(keys, &error);

	if (cfg == NULL)
		fail_msg("for %s: %s", keys, error);
	assert_string_equal(cfg->checks[0]->target, target);
	return cfg;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* An empty regular file (a device like /dev/null is refused as a CA or password file). */
static const char *empty_file(void)
{
	static char path[64];

	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/hd-mysql-empty-%d", (int)getpid());
		write_file(path, "", 0600);
	}
	return path;
}

/* A CA file that holds one certificate (self-signed by the test's own key, made once for this test). */
static const char *ca_file(void)
{
	static const char pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBljCCATugAwIBAgIUGUZPZLPFV8265Q4PtKsF7pifu5gwCgYIKoZIzj0EAwIw\n"
	"HzEdMBsGA1UEAwwUaGVhbHRoZCB1bml0IHRlc3QgY2EwIBcNMjYxMjA3MTIzNTE2\n"
	"WhgPMjEyNjExMTMxMjM1MTZaMB8xHTAbBgNVBAMMFGhlYWx0aGQgdW5pdCB0ZXN0\n"
	"IGNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcCybkZ5wtu4H+EOnd1PHjpnn\n"
	"ZZWVHcFdKKnK4FWEnXoQiPd57di1O45tcdO41ORNkkpI2FBhBGSUpktWBpQ/0qNT\n"
	"MFEwHQYDVR0OBBYEFBc4tf90lJZ32ORPR1yx7ooF08gLMB8GA1UdIwQYMBaAFBc4\n"
	"tf90lJZ32ORPR1yx7ooF08gLMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID\n"
	"SQAwRgIhAKmLivM9che7UNZ6kqFYTA9mW8dxxMsjWDjrzg0mo3jKAiEAv1tKs+UM\n"
	"KlLKT/c7M0kdyVVWnxW4yhFlzpcGClCy2G0=\n"
	"-----END CERTIFICATE-----\n";
	static char path[64];

	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/hd-mysql-ca-%d.pem", (int)getpid());
		write_file(path, pem, 0600);
	}
	return path;
}

static void test_valid_forms(void **state)
{
	char keys[256], msg[160];

	(void)state;
	config_free(expect_valid("\"host\": \"db1.internal\", \"user\": \"healthd\"", "db1.internal:3306"));
	config_free(expect_valid("\"host\": \"10.0.13.1\", \"port\": 3307, \"user\": \"u\", \"password\": \"p\", "
				 "\"database\": \"app\", \"query\": \"SELECT 1 FROM dual\", \"expect_read_only\": true, "
				 "\"max_replication_lag_s\": 30, \"persistent\": true", "10.0.13.1:3307"));
	config_free(expect_valid("\"host\": \"::1\", \"user\": \"u\", \"tls\": \"preferred\"", "[::1]:3306"));
	snprintf(keys, sizeof(keys), "\"host\": \"h\", \"user\": \"u\", \"tls\": \"required\", \"ca\": \"%s\"", ca_file());
	config_free(expect_valid(keys, "h:3306"));
	snprintf(keys, sizeof(keys), "\"host\": \"h\", \"user\": \"u\", \"tls\": \"required\", \"ca\": \"%s\"", empty_file());
	snprintf(msg, sizeof(msg), "the CA file %s holds no PEM certificate", empty_file());
	expect_error(keys, msg);
	expect_error("\"host\": \"h\", \"user\": \"u\", \"tls\": \"required\", \"ca\": \"/dev/null\"",
		     "cannot read the CA file /dev/null: a device");
}

static void test_errors_point_at_the_key(void **state)
{
	char keys[256], msg[128];

	(void)state;
	expect_error("\"host\": \"h\", \"user\": \"u\", \"password\": \"p\", \"password_file\": \"/dev/null\"",
		     "t.json:2:45: checks[\"db\"].password_file: give password or password_file, not both");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"password_file\": \"/nonexistent/pw\"",
		     "t.json:2:45: checks[\"db\"].password_file: cannot read the password file /nonexistent/pw");
	snprintf(keys, sizeof(keys), "\"host\": \"h\", \"user\": \"u\", \"password_file\": \"%s\"", empty_file());
	snprintf(msg, sizeof(msg), "the password file %s is empty", empty_file());
	expect_error(keys, msg);
	expect_error("\"host\": \"h\", \"user\": \"u\", \"password_file\": \"/dev/null\"",
		     "cannot read the password file /dev/null: a device");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"ca\": \"/dev/null\"",
		     "t.json:2:28: checks[\"db\"].ca: ca verifies the server's certificate, which needs \"tls\": \"required\"");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"tls\": \"required\", \"ca\": \"/nonexistent/ca.pem\"",
		     "cannot read the CA file /nonexistent/ca.pem");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"tls\": \"on\"", "expected one of \"off\", \"preferred\", \"required\"");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"max_replication_lag_s\": 0", "expected an integer from 1 to 604800");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"expect_read_only\": \"yes\"", "expected true or false");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"port\": 70000", "expected an integer from 1 to 65535");
	expect_error("\"host\": \"h\"", "missing required key \"user\"");
	expect_error("\"user\": \"u\"", "missing required key \"host\"");
	expect_error("\"host\": \"h\", \"user\": \"u\", \"pasword\": \"p\"", "unknown key \"pasword\" (did you mean \"password\"?)");
}

/* A new password in the file is a changed check on reload (restarted with it); the same password is not. */
static void test_password_file_feeds_the_fingerprint(void **state)
{
	char dir[] = "/tmp/hd-mysql-unit-XXXXXX", path[64], keys[256];
	struct hd_config *a, *b, *c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pw", dir);
	snprintf(keys, sizeof(keys), "\"host\": \"h\", \"user\": \"u\", \"password_file\": \"%s\"", path);
	write_file(path, "first-secret\n", 0600);
	a = expect_valid(keys, "h:3306");
	b = expect_valid(keys, "h:3306");
	write_file(path, "second-secret\n", 0600);
	c = expect_valid(keys, "h:3306");
	assert_string_equal(a->checks[0]->fingerprint, b->checks[0]->fingerprint);
	assert_string_not_equal(a->checks[0]->fingerprint, c->checks[0]->fingerprint);
	/* the fingerprint holds a digest of the file, never its text */
	assert_null(strstr(a->checks[0]->fingerprint, "first-secret"));
	assert_null(strstr(c->checks[0]->fingerprint, "second-secret"));
	config_free(a);
	config_free(b);
	config_free(c);
	unlink(path);
	rmdir(dir);
}

/* The same reader serves mysql and redis: one trailing CR LF dropped, 4096 bytes at most, never cut short. */
static void test_password_file_limits_shared_with_redis(void **state)
{
	static const char *const types[] = {"mysql", "redis"};
	char dir[] = "/tmp/hd-mysql-unit-XXXXXX", path[64], text[512], big[4100], *error = NULL;
	struct hd_config *cfg;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pw", dir);
	memset(big, 'p', 4096);
	for (size_t t = 0; t < HD_ARRAY_LEN(types); t++) {
		snprintf(text, sizeof(text), "{\"checks\": [{\"name\": \"c\", \"type\": \"%s\", \"host\": \"h\", %s"
			 "\"password_file\": \"%s\"}]}", types[t], t == 0 ? "\"user\": \"u\", " : "", path);
		memcpy(big + 4096, "\r\n", 3);
		write_file(path, big, 0600);
		cfg = config_parse("t.json", text, strlen(text), &error);
		if (cfg == NULL)
			fail_msg("%s, 4096 bytes and CR LF: %s", types[t], error);
		config_free(cfg);

		memcpy(big + 4096, "p\n", 3);
		write_file(path, big, 0600);
		assert_null(config_parse("t.json", text, strlen(text), &error));
		if (strstr(error, "checks[\"c\"].password_file: the password file ") == NULL ||
		    strstr(error, " holds more than 4096 bytes") == NULL)
			fail_msg("%s, 4097 bytes: %s", types[t], error);
		free(error);
		error = NULL;
	}
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_forms),
		cmocka_unit_test(test_errors_point_at_the_key),
		cmocka_unit_test(test_password_file_feeds_the_fingerprint),
		cmocka_unit_test(test_password_file_limits_shared_with_redis),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	unlink(empty_file());
	unlink(ca_file());
	return failed;
}
