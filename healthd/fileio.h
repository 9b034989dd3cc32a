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
/* The temporary name hd_write_file_atomic uses, for cleaning up after a crash. */
#define HD_TMP_PREFIX "tmp-"

#endif
