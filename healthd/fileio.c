/* fileio.c: durable file writes (write all, fsync, atomic rename, directory fsync) shared by spool and state file. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int hd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hd_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, saved;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int hd_write_file_atomic(const char *dir, const char *name, const char *text, size_t len, char **error)
{
	char *tmp = xasprintf("%s/" HD_TMP_PREFIX "%s", dir, name), *final = xasprintf("%s/%s", dir, name);
	const char *step = "create", *subject = tmp;
	int fd, rc = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto out;
	step = "write";
	if (hd_write_all(fd, text, len) < 0)
		goto out;
	step = "fsync";
	if (fsync(fd) < 0)
		goto out;
	step = "close";
	rc = close(fd);
	fd = -1;
	if (rc < 0)
		goto out;
	rc = -1;
	step = "rename";
	subject = final;
	if (rename(tmp, final) < 0)
		goto out;
	step = "fsync the directory";
	subject = dir;
	if (hd_fsync_dir(dir) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		int saved = errno;
		if (error != NULL && *error == NULL)
			*error = xasprintf("cannot %s %s: %s", step, subject, strerror(saved));
		if (fd >= 0)
			close(fd);
		if (strcmp(step, "fsync the directory") != 0) /* after the rename the new file is the good one */
			unlink(tmp);
		errno = saved;
	}
	free(tmp);
	free(final);
	return rc;
}
