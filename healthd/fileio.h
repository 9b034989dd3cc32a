/* fileio.h: durable file writes shared by the alert spool and the admin state file. */
#ifndef HEALTHD_FILEIO_H
#define HEALTHD_FILEIO_H

#include <stddef.h>

/* write() until done, retrying on EINTR. 0, or -1 with errno. */
int hd_write_all(int fd, const void *buf, size_t len);
/* fsync() of a directory, so that entries created or renamed in it survive a crash. 0, or -1 with errno. */
int hd_fsync_dir(const char *dir);
/*
 * Writes dir/name whole or not at all: dir/tmp-NAME (mode 0600, never through a symlink), fsync, rename over
 * dir/name, fsync of dir. On failure the temporary file is removed and *error (if still NULL) says which step
 * failed on which file. Blocks on the disk: call it from a worker thread, never from the loop.
 */
int hd_write_file_atomic(const char *dir, const char *name, const char *text, size_t len, char **error);
/*
 * The same in steps, for a batch of files that share one wait for the disk: write every file (its write-back
 * starts at once), sync each, commit (rename) each in order, fsync each directory once; end each whatever
 * happened (a file not committed is removed). Each step: 0, or -1 with *error (if still NULL) naming the file.
 */
struct hd_staged {
	char *tmp, *final;
	int fd; /* -1 once closed */
};
int hd_staged_write(struct hd_staged *s, const char *dir, const char *name, const char *text, size_t len, char **error);
int hd_staged_sync(struct hd_staged *s, char **error);
int hd_staged_commit(struct hd_staged *s, char **error);
void hd_staged_end(struct hd_staged *s);
/* The temporary name hd_write_file_atomic uses, for cleaning up after a crash. */
#define HD_TMP_PREFIX "tmp-"

#endif
