/* page.h: the status page for a person (GET / with Accept: text/html), rendered from the cached state. */
#ifndef HEALTHD_PAGE_H
#define HEALTHD_PAGE_H

struct evbuffer;
struct hd_engine;
struct hd_history;
struct hd_http;
struct hd_status;
struct hd_page;

struct hd_page *page_new(struct hd_engine *engine, struct hd_status *status, struct hd_history *history,
			 struct hd_http *http);
void page_free(struct hd_page *p);

/* The pages' one inline stylesheet (the status page, and the fleet page of `healthd fleet --html`). */
extern const char hd_page_style[];
/* Pure part, for tests: s with & < > " ' as HTML entities (and control bytes as spaces), appended to out. */
void hd_html_escape(struct evbuffer *out, const char *s);

#endif
