/* test_refbuf.c: a rendered body shared by reference: its bytes, and who keeps it alive until its last reply has left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <string.h>

#include "refbuf.h"

static void take_moves_every_byte_and_ends_with_a_nul(void **state)
{
	struct evbuffer *src = evbuffer_new();
	struct hd_refbuf *b;

	(void)state;
	evbuffer_add_printf(src, "{\"status\":\"%s\"}", "up");
	evbuffer_add(src, "\n", 1);
	b = hd_refbuf_take(src);
	assert_int_equal(evbuffer_get_length(src), 0);
	assert_int_equal(b->len, 16);
	assert_memory_equal(b->data, "{\"status\":\"up\"}\n", 16);
	assert_int_equal(b->data[b->len], '\0');
	assert_int_equal(b->refs, 1);
	hd_refbuf_unref(b);
	evbuffer_free(src);
}

/* The cache lets go (a newer body replaced it) while a reply still sends it: the reply's bytes stay valid. */
static void a_reply_keeps_the_bytes_after_the_cache_lets_go(void **state)
{
	struct hd_refbuf *b = hd_refbuf_new(5);
	struct evbuffer *out = evbuffer_new();

	(void)state;
	memcpy(b->data, "hello", 5);
	assert_int_equal(hd_refbuf_add(out, b), 0);
	assert_int_equal(b->refs, 2);
	assert_int_equal(evbuffer_get_length(out), 5);
	hd_refbuf_unref(b); /* the cache's reference */
	assert_int_equal(b->refs, 1);
	assert_memory_equal(evbuffer_pullup(out, -1), "hello", 5);
	evbuffer_free(out); /* the reply's reference: the last one (ASan reports a leak or a use after free) */
}

/* The reference ends when its bytes have left (drained), not when the reply's buffer is freed. */
static void bytes_that_have_left_release_their_reference(void **state)
{
	struct hd_refbuf *b = hd_refbuf_new(8);
	struct evbuffer *out = evbuffer_new();

	(void)state;
	memcpy(b->data, "abcdefgh", 8);
	assert_int_equal(hd_refbuf_add(out, b), 0);
	assert_int_equal(hd_refbuf_add(out, b), 0);
	assert_int_equal(b->refs, 3);
	evbuffer_drain(out, 4);
	assert_int_equal(b->refs, 3); /* half of the first copy is still to be sent */
	evbuffer_drain(out, 4);
	assert_int_equal(b->refs, 2);
	evbuffer_drain(out, 8);
	assert_int_equal(b->refs, 1);
	evbuffer_free(out);
	hd_refbuf_unref(b);
}

static void an_empty_body_adds_nothing_and_keeps_no_reference(void **state)
{
	struct hd_refbuf *b = hd_refbuf_new(0);
	struct evbuffer *out = evbuffer_new();

	(void)state;
	assert_int_equal(hd_refbuf_add(out, b), 0);
	assert_int_equal(evbuffer_get_length(out), 0);
	assert_int_equal(b->refs, 1);
	hd_refbuf_unref(b);
	hd_refbuf_unref(NULL);
	evbuffer_free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(take_moves_every_byte_and_ends_with_a_nul),
		cmocka_unit_test(a_reply_keeps_the_bytes_after_the_cache_lets_go),
		cmocka_unit_test(bytes_that_have_left_release_their_reference),
		cmocka_unit_test(an_empty_body_adds_nothing_and_keeps_no_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
