/* check_push.h: reports for push checks (`healthd ctl push NAME ok|fail`), kept durably in state_dir. */
#ifndef HEALTHD_CHECK_PUSH_H
#define HEALTHD_CHECK_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hd_check_conf;

#define HD_PUSH_DETAIL_MAX 200

/* done runs on the loop once the report is on disk (rc 0) or could not be saved (rc -1, error says why). */
typedef void (*hd_push_saved_fn)(uint64_t generation, int rc, const char *error, void *arg);

/*
 * Records a report for the check conf (NULL when no check has that name): it counts at the check's next attempt,
 * and is written to state_dir/push-NAME.json on a worker thread. Returns the write's generation (> 0), passed to
 * done later, or 0 with *error (malloc'd) for an unknown check or one of another type.
 */
uint64_t hd_push_report(struct event_base *base, const char *state_dir, const struct hd_check_conf *conf,
			const char *name, bool ok, const char *detail, hd_push_saved_fn done, void *arg, char **error);

/* Pure parts, for tests: "NAME ok|fail[ DETAIL]" (0, or -1 with *error, static text), and "26 h" for people. */
int hd_push_parse_request(const char *args, char *name, size_t name_len, bool *ok, char *detail, size_t detail_len,
			  const char **error);
void hd_push_human_ms(int64_t ms, char *buf, size_t len);

#endif
