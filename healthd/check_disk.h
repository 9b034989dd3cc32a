/* check_disk.h: the pure verdict of the disk check (one measurement -> kind and detail), exported for tests. */
#ifndef HEALTHD_CHECK_DISK_H
#define HEALTHD_CHECK_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

struct hd_disk_limits {
	int max_used_pct;
	int max_inodes_pct;
	int max_latency_ms;
	int for_cycles;
};

/* What the worker thread saw. A step that failed names itself and its errno; later fields are then unset. */
struct hd_disk_sample {
	const char *failed_step; /* "stat", "statvfs", "probe create", "probe write", "probe fsync", "probe unlink" */
	const char *failed_object; /* the path that step worked on */
	int err;
	bool not_dir;
	bool read_only;   /* the filesystem itself is read-only (statvfs, and its mount options say so) */
	bool view_read_only; /* only healthd's view is: a read-only mount of a writable filesystem (ProtectSystem) */
	bool probe_off;   /* "probe": false: no write probe was made, probe_ms is unset */
	uint64_t frsize;  /* statvfs: fragment size, the unit of the block counts */
	uint64_t blocks, bfree, bavail;
	uint64_t files, ffree; /* files == 0: the filesystem does not count inodes (btrfs) */
	double probe_ms;  /* create + write + fsync of the probe file */
};

/*
 * Turns one sample into a kind and a detail for people. *cycles_over counts consecutive samples over a limit
 * (kept by the caller across attempts); a limit counts only from the for_cycles-th such sample on, until then
 * the kind is ok and the detail says which cycle it is.
 */
enum hd_kind hd_disk_evaluate(const char *path, const struct hd_disk_sample *s, const struct hd_disk_limits *lim,
			      int *cycles_over, char *detail, size_t len);

/*
 * One line of /proc/self/mountinfo: -1 when it is not a mount of device major:minor, else 1 when that
 * filesystem's own (superblock) options say read-only, 0 when they say read-write.
 */
int hd_disk_mountinfo_read_only(const char *line, unsigned int major, unsigned int minor);

#endif
