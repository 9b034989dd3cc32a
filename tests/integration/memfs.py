"""A tiny in-memory FUSE filesystem for the disk check's tests: one flat directory of files.

    python3 memfs.py MOUNTPOINT

It serves requests in this one process, so SIGSTOP freezes every call on the mount
(stat, statvfs, open, write, fsync...) the way a dead NFS server does, and SIGCONT
lets them finish.  Unmounting the mountpoint ends the process.
"""

import errno
import stat
import sys
import time

from fusepy import FUSE, FuseOSError, Operations


class MemFS(Operations):
    def __init__(self):
        now = time.time()
        self.root = dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_ctime=now, st_mtime=now,
                         st_atime=now)
        self.files = {}  # "/name" -> {"attr": {...}, "data": bytearray}

    def _file(self, path):
        f = self.files.get(path)
        if f is None:
            raise FuseOSError(errno.ENOENT)
        return f

    def getattr(self, path, fh=None):
        if path == "/":
            return self.root
        f = self._file(path)
        f["attr"]["st_size"] = len(f["data"])
        return f["attr"]

    def readdir(self, path, fh):
        return [".", ".."] + [name[1:] for name in self.files]

    def statfs(self, path):
        used = sum(len(f["data"]) for f in self.files.values()) // 4096
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=1024, f_bfree=1024 - used,
                    f_bavail=1024 - used, f_files=1000, f_ffree=1000 - len(self.files),
                    f_favail=1000 - len(self.files), f_namemax=255)

    def create(self, path, mode, fi=None):
        if path.count("/") != 1:
            raise FuseOSError(errno.EACCES)
        if path in self.files:
            raise FuseOSError(errno.EEXIST)
        now = time.time()
        self.files[path] = {"attr": dict(st_mode=stat.S_IFREG | (mode & 0o7777), st_nlink=1,
                                         st_ctime=now, st_mtime=now, st_atime=now),
                            "data": bytearray()}
        return 0

    def open(self, path, flags):
        self._file(path)
        return 0

    def read(self, path, size, offset, fh):
        return bytes(self._file(path)["data"][offset:offset + size])

    def write(self, path, data, offset, fh):
        buf = self._file(path)["data"]
        if len(buf) < offset:
            buf.extend(b"\0" * (offset - len(buf)))
        buf[offset:offset + len(data)] = data
        return len(data)

    def truncate(self, path, length, fh=None):
        buf = self._file(path)["data"]
        del buf[length:]

    def unlink(self, path):
        self._file(path)
        del self.files[path]

    def fsync(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0

    def chmod(self, path, mode):
        return 0

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        return 0


if __name__ == "__main__":
    FUSE(MemFS(), sys.argv[1], foreground=True, nothreads=True)
