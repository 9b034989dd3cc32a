/* refbuf.c: bytes rendered once and sent to every reply by reference, freed when the cache and the last reply let go. */
#include "refbuf.h"

#include <stdlib.h>

#include <event2/buffer.h>

#include "util.h"

struct hd_refbuf *hd_refbuf_new(size_t len)
{
	struct hd_refbuf *b = xmalloc(sizeof(*b) + len + 1);

	b->refs = 1;
	b->len = len;
	b->data[len] = '\0';
	return b;
}

struct hd_refbuf *hd_refbuf_take(struct evbuffer *src)
{
	struct hd_refbuf *b = hd_refbuf_new(evbuffer_get_length(src));
	int n = evbuffer_remove(src, b->data, b->len);

	if (n < 0 || (size_t)n != b->len)
		hd_fatal("refbuf: an evbuffer gave fewer bytes than it holds");
	return b;
}

void hd_refbuf_unref(struct hd_refbuf *b)
{
	if (b != NULL && --b->refs == 0)
		free(b);
}

/* libevent's cleanup of a reply's reference, once its bytes have left (or the connection was dropped). */
static void reference_done(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	hd_refbuf_unref(arg);
}

int hd_refbuf_add(struct evbuffer *out, struct hd_refbuf *b)
{
	if (b->len == 0)
		return 0;
	b->refs++;
	if (evbuffer_add_reference(out, b->data, b->len, reference_done, b) == 0)
		return 0;
	b->refs--;
	return evbuffer_add(out, b->data, b->len);
}
