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

/* Records the first failure: "cannot STEP SUBJECT: why". */
static int staged_fail(char **error, const char *step, const char *subject)
{
	int saved = errno;

	if (error != NULL && *error == NULL)
		*error = xasprintf("cannot %s %s: %s", step, subject, strerror(saved));
	errno = saved;
	return -1;
}

int hd_staged_write(struct hd_staged *s, const char *dir, const char *name, const char *text, size_t len, char **error)
{
	s->tmp = xasprintf("%s/" HD_TMP_PREFIX "%s", dir, name);
	s->final = xasprintf("%s/%s", dir, name);
	s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0)
		return staged_fail(error, "create", s->tmp);
	if (hd_write_all(s->fd, text, len) < 0)
		return staged_fail(error, "write", s->tmp);
	/* start the write-back now, so that the fsyncs of a batch wait for writes already under way together */
	(void)sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	return 0;
}

int hd_staged_sync(struct hd_staged *s, char **error)
{
	int rc;

	if (fsync(s->fd) < 0)
		return staged_fail(error, "fsync", s->tmp);
	rc = close(s->fd);
	s->fd = -1;
	return rc < 0 ? staged_fail(error, "close", s->tmp) : 0;
}

int hd_staged_commit(struct hd_staged *s, char **error)
{
	if (rename(s->tmp, s->final) < 0)
		return staged_fail(error, "rename", s->final);
	free(s->tmp);
	s->tmp = NULL;
	return 0;
}

void hd_staged_end(struct hd_staged *s)
{
	int saved = errno;

	if (s->fd >= 0)
		close(s->fd);
	if (s->tmp != NULL) /* not committed: the temporary file goes */
		unlink(s->tmp);
	free(s->tmp);
	free(s->final);
	*s = (struct hd_staged){.fd = -1};
	errno = saved;
}

int hd_write_file_atomic(const char *dir, const char *name, const char *text, size_t len, char **error)
{
	struct hd_staged s = {.fd = -1};
	int rc = -1;

	if (hd_staged_write(&s, dir, name, text, len, error) == 0 && hd_staged_sync(&s, error) == 0 &&
	    hd_staged_commit(&s, error) == 0)
		rc = hd_fsync_dir(dir) < 0 ? staged_fail(error, "fsync the directory", dir) : 0;
	hd_staged_end(&s);
	return rc;
}
