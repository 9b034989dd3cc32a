/* test_disk.c: the disk check's verdict on one measurement: df's percentage, thresholds, for_cycles, error texts,
 * the probe off, read-only views, and mountinfo lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>

#include "check_disk.h"

static const struct hd_disk_limits defaults = {.max_used_pct = 95, .max_inodes_pct = 95, .max_latency_ms = 300,
					       .for_cycles = 1};

/* 50 GiB in 4 KiB blocks, 10% used, plenty of inodes, a fast probe. */
static struct hd_disk_sample healthy(void)
{
	return (struct hd_disk_sample){.frsize = 4096, .blocks = 13107200, .bfree = 11796480, .bavail = 11796480,
				       .files = 1000, .ffree = 900, .probe_ms = 1.5};
}

static enum hd_kind judge(const struct hd_disk_sample *s, const struct hd_disk_limits *lim, int *cycles, char *detail)
{
	detail[0] = '\0';
	return hd_disk_evaluate("/data", s, lim, cycles, detail, 384);
}

static void healthy_filesystem_is_ok_with_numbers(void **unused)
{
	struct hd_disk_sample s = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_OK);
	assert_string_equal(detail, "/data: 10.0% used (45 GiB free of 50 GiB), inodes 10.0% used, write+fsync 1.5 ms");
	assert_int_equal(cycles, 0);
}

static void used_percentage_is_dfs_used_over_used_plus_available(void **unused)
{
	struct hd_disk_sample s = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	/* 2 GiB free, of which 1.5 GiB available to non-root: 12582912 / (12582912 + 393216) = 96.97% */
	s.bfree = 524288;
	s.bavail = 393216;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_THRESHOLD);
	assert_string_equal(detail, "/data: 97.0% used > 95% (1.5 GiB free of 50 GiB)");
	/* 95.0% exactly is not over 95% (df shows 95%) */
	s.blocks = 1000;
	s.bfree = 50;
	s.bavail = 50;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_OK);
	assert_string_equal(detail, "/data: 95.0% used (200 KiB free of 3.9 MiB), inodes 10.0% used, write+fsync 1.5 ms");
	/* nothing available to non-root while root's reserve is left: 100% as df says */
	s.bfree = 40;
	s.bavail = 0;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_THRESHOLD);
	assert_string_equal(detail, "/data: 100.0% used > 95% (0 B free of 3.9 MiB)");
}

static void inodes_over_the_limit_is_a_threshold(void **unused)
{
	struct hd_disk_sample s = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	s.ffree = 20;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_THRESHOLD);
	assert_string_equal(detail, "/data: inodes 98.0% used > 95% (20 free of 1000)");
}

static void no_inode_count_skips_the_inode_test(void **unused)
{
	struct hd_disk_sample s = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	s.files = 0; /* btrfs */
	s.ffree = 0;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_OK);
	assert_string_equal(detail,
			    "/data: 10.0% used (45 GiB free of 50 GiB), inodes not counted by this filesystem, write+fsync 1.5 ms");
}

static void a_slow_probe_is_slow_and_space_wins_over_it(void **unused)
{
	struct hd_disk_sample s = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	s.probe_ms = 412.4;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_SLOW);
	assert_string_equal(detail, "/data: write+fsync of a 4 KiB probe file took 412 ms > 300 ms");
	s.bavail = s.bfree = 131072; /* 99% used */
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_THRESHOLD);
	assert_string_equal(detail, "/data: 99.0% used > 95% (512 MiB free of 50 GiB); "
				    "write+fsync of a 4 KiB probe file took 412 ms > 300 ms");
}

static void for_cycles_counts_consecutive_cycles_before_it_fails(void **unused)
{
	struct hd_disk_limits lim = defaults;
	struct hd_disk_sample full = healthy(), fine = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	lim.for_cycles = 3;
	full.bavail = full.bfree = 131072;
	assert_int_equal(judge(&full, &lim, &cycles, detail), HD_KIND_OK);
	assert_string_equal(detail, "/data: 99.0% used > 95% (512 MiB free of 50 GiB), cycle 1 of 3 before it counts");
	assert_int_equal(judge(&full, &lim, &cycles, detail), HD_KIND_OK);
	assert_string_equal(detail, "/data: 99.0% used > 95% (512 MiB free of 50 GiB), cycle 2 of 3 before it counts");
	assert_int_equal(judge(&full, &lim, &cycles, detail), HD_KIND_THRESHOLD);
	assert_string_equal(detail, "/data: 99.0% used > 95% (512 MiB free of 50 GiB) for 3 cycles");
	assert_int_equal(judge(&full, &lim, &cycles, detail), HD_KIND_THRESHOLD);
	assert_int_equal(cycles, 3);
	/* one cycle under the limit starts the count again */
	assert_int_equal(judge(&fine, &lim, &cycles, detail), HD_KIND_OK);
	assert_int_equal(cycles, 0);
	assert_int_equal(judge(&full, &lim, &cycles, detail), HD_KIND_OK);
	assert_int_equal(cycles, 1);
}

static void errors_fail_at_once_and_reset_the_cycle_count(void **unused)
{
	struct hd_disk_limits lim = defaults;
	struct hd_disk_sample s = {.read_only = true};
	char detail[384];
	int cycles = 2;

	(void)unused;
	lim.for_cycles = 5;
	assert_int_equal(judge(&s, &lim, &cycles, detail), HD_KIND_ERROR);
	assert_string_equal(detail, "/data: read-only filesystem (statvfs reports it mounted read-only; "
				    "remounted after I/O errors? see the kernel log)");
	assert_int_equal(cycles, 0);
}

static void error_details_name_the_step_and_what_it_means(void **unused)
{
	static const struct {
		const char *step;
		const char *object;
		int err;
		const char *want;
	} cases[] = {
		{"stat", "/data", ENOENT,
		 "/data: does not exist (stat /data: No such file or directory; not mounted, or a wrong path?)"},
		{"probe create", "/data/.healthd-probe.d", EROFS,
		 "/data: read-only filesystem (probe create /data/.healthd-probe.d: Read-only file system; "
		 "remounted read-only after I/O errors? see the kernel log)"},
		{"probe create", "/data/.healthd-probe.d", EACCES,
		 "/data: permission denied (probe create /data/.healthd-probe.d: Permission denied; "
		 "healthd needs search and write access to the directory)"},
		{"probe write", "/data/.healthd-probe.d", ENOSPC,
		 "/data: no space left (probe write /data/.healthd-probe.d: No space left on device; "
		 "a 4 KiB probe file did not fit)"},
		{"probe create", "/proc/.healthd-probe.d", ENOENT,
		 "/data: cannot hold files (probe create /proc/.healthd-probe.d: No such file or directory; "
		 "a pseudo filesystem such as /proc?)"},
		{"probe fsync", "/data/.healthd-probe.d", EIO,
		 "/data: I/O error (probe fsync /data/.healthd-probe.d: Input/output error; "
		 "a failing disk or a lost storage path? see the kernel log)"},
		{"statvfs", "/data", ENOSYS, "/data: failed (statvfs /data: Function not implemented)"},
	};
	char detail[384];

	(void)unused;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hd_disk_sample s = {.failed_step = cases[i].step, .failed_object = cases[i].object,
					   .err = cases[i].err};
		int cycles = 0;
		assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_ERROR);
		assert_string_equal(detail, cases[i].want);
	}
	{
		struct hd_disk_sample s = {.not_dir = true};
		int cycles = 0;
		assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_ERROR);
		assert_string_equal(detail, "/data: not a directory");
	}
}

static void probe_off_measures_space_and_inodes_only(void **unused)
{
	struct hd_disk_sample s = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	s.probe_off = true;
	s.probe_ms = 0;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_OK);
	assert_string_equal(detail, "/data: 10.0% used (45 GiB free of 50 GiB), inodes 10.0% used, write probe off");
	s.bavail = s.bfree = 131072; /* 99% used: the thresholds still apply */
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_THRESHOLD);
	assert_string_equal(detail, "/data: 99.0% used > 95% (512 MiB free of 50 GiB)");
}

static void a_read_only_view_of_a_writable_filesystem(void **unused)
{
	struct hd_disk_sample s = healthy();
	char detail[384];
	int cycles = 0;

	(void)unused;
	/* with the probe: it cannot be made, and the detail says why and what to do */
	s.view_read_only = true;
	s.probe_ms = 0;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_ERROR);
	assert_string_equal(detail, "/data: read-only to healthd, the filesystem itself is writable (a read-only mount such "
				    "as systemd's ProtectSystem=strict; set \"probe\": false to watch space and inodes only, "
				    "or allow writes with ReadWritePaths=)");
	/* without: healthy */
	s.probe_off = true;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_OK);
	assert_string_equal(detail, "/data: 10.0% used (45 GiB free of 50 GiB), inodes 10.0% used, write probe off");
	/* a filesystem that is read-only itself is an error either way */
	s.read_only = true;
	assert_int_equal(judge(&s, &defaults, &cycles, detail), HD_KIND_ERROR);
	assert_string_equal(detail, "/data: read-only filesystem (statvfs reports it mounted read-only; "
				    "remounted after I/O errors? see the kernel log)");
}

static void mountinfo_lines_tell_the_filesystems_own_state(void **unused)
{
	static const struct {
		const char *line;
		unsigned int major, minor;
		int want;
	} cases[] = {
		/* ProtectSystem=strict: the mount is ro, the superblock rw */
		{"43 42 254:0 / / ro,relatime - ext4 /dev/vda rw,discard,errors=remount-ro\n", 254, 0, 0},
		{"43 42 254:0 / / ro,relatime - ext4 /dev/vda ro,discard\n", 254, 0, 1},
		{"43 42 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw,ro\n", 254, 0, 1},
		/* optional fields, a mount point with an escaped space, no trailing newline */
		{"61 27 8:17 /data /mnt/my\\040disk rw shared:7 - xfs /dev/sdb1 rw,attr2,noquota", 8, 17, 0},
		/* "ro" only as a part of a longer option is not read-only */
		{"61 27 8:17 / /x rw - ext4 /dev/sdb1 rw,errors=remount-ro,rox", 8, 17, 0},
		/* another device, or a line that is not mountinfo */
		{"43 42 254:0 / / rw - ext4 /dev/vda ro\n", 254, 1, -1},
		{"43 42 254:0 / / rw - ext4 /dev/vda ro\n", 8, 0, -1},
		{"43 42 254:0 / / rw ext4 /dev/vda ro\n", 254, 0, -1},
		{"43 42 254:0 / / rw - ext4\n", 254, 0, -1},
		{"", 0, 0, -1},
	};

	(void)unused;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(hd_disk_mountinfo_read_only(cases[i].line, cases[i].major, cases[i].minor), cases[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(healthy_filesystem_is_ok_with_numbers),
		cmocka_unit_test(used_percentage_is_dfs_used_over_used_plus_available),
		cmocka_unit_test(inodes_over_the_limit_is_a_threshold),
		cmocka_unit_test(no_inode_count_skips_the_inode_test),
		cmocka_unit_test(a_slow_probe_is_slow_and_space_wins_over_it),
		cmocka_unit_test(for_cycles_counts_consecutive_cycles_before_it_fails),
		cmocka_unit_test(errors_fail_at_once_and_reset_the_cycle_count),
		cmocka_unit_test(error_details_name_the_step_and_what_it_means),
		cmocka_unit_test(probe_off_measures_space_and_inodes_only),
		cmocka_unit_test(a_read_only_view_of_a_writable_filesystem),
		cmocka_unit_test(mountinfo_lines_tell_the_filesystems_own_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
