/* refbuf.h: bytes rendered once and sent to every reply by reference, freed when the cache and the last reply let go. */
#ifndef HEALTHD_REFBUF_H
#define HEALTHD_REFBUF_H

#include <stddef.h>

struct evbuffer;

struct hd_refbuf {
	unsigned refs; /* the cache's one, plus one for each reply still sending it */
	size_t len;
	char data[];   /* len bytes, then a NUL */
};

/* A buffer of len bytes (uninitialized, NUL-terminated) with one reference: the caller's. */
struct hd_refbuf *hd_refbuf_new(size_t len);
/* Moves every byte of src into a new refbuf (src is left empty). */
struct hd_refbuf *hd_refbuf_take(struct evbuffer *src);
/* Drops one reference (NULL is fine); the last one frees. */
void hd_refbuf_unref(struct hd_refbuf *b);
/* Appends b's bytes to out by reference (b stays until they have left, or the connection is dropped); a copy
 * when libevent cannot take the reference. Returns 0, or -1 when out of memory. */
int hd_refbuf_add(struct evbuffer *out, struct hd_refbuf *b);

#endif
