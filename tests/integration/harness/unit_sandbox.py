"""Runs the commands of systemd/healthd.service the way systemd would, without systemd as PID 1.

    box = UnitSandbox(workdir, user="healthd")
    box.file("/etc/healthd/healthd.json", text, mode=0o640, group="healthd")
    argv = box.argv([pre_argv, start_argv])      # run with Popen/subprocess (as root)

The argv is `unshare --mount` of this file run as a script: in a private mount namespace it
- overlays /etc, /var/lib, /run and /usr/local (or `overlaid`) with directories under workdir, so that nothing
  of the host changes,
- runs `root_commands` as root there (make install, systemd-sysusers: the README's steps),
- writes the files and directories asked for, then the unit's StateDirectory and RuntimeDirectory
  (/var/lib/healthd, /run/healthd, 0750, owned by the user),
- reproduces the unit's sandbox: every mount read-only but those two directories (and any `writable()`, as
  ReadWritePaths= would) and the API file systems
  (ProtectSystem=strict, ProtectHome=read-only), a fresh /tmp and /var/tmp (PrivateTmp), UMask=0077,
  NoNewPrivileges, an empty capability bounding set, the user's uid and gid with no other groups,
- runs every command but the last as the user, each must exit 0 (ExecStartPre), and becomes the last one
  (ExecStart): the PID of the argv is then the daemon's.
Users and groups are names or numbers; names are looked up inside the namespace, after the root commands
(so a user made by systemd-sysusers there is found).
"""

import grp
import json
import os
import pwd
import shlex
import subprocess
import sys

OVERLAID = ("/etc", "/var/lib", "/run", "/usr/local")
UNIT_WRITABLE = ("/var/lib/healthd", "/run/healthd")
API_FS = ("/proc", "/sys", "/dev")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSED_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
UNIT_PATH = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def unit_commands(unit_text):
    """ExecStartPre= lines and the ExecStart= line of a unit file, each as an argv."""
    pre, start = [], None
    for line in unit_text.splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStartPre":
            pre.append(shlex.split(value))
        elif key == "ExecStart":
            start = shlex.split(value)
    return pre, start


class UnitSandbox:
    def __init__(self, workdir, user="healthd", group=None, cwd="/", overlaid=OVERLAID):
        self.workdir = workdir
        self.spec = {"upper": os.path.join(workdir, "overlay"), "overlaid": list(overlaid),
                     "user": user, "group": group or user,
                     "cwd": cwd, "root_commands": [], "files": [], "dirs": [], "writable": []}

    def root_command(self, argv, cwd="/", env=None):
        """Run as root inside the namespace before anything else (an install step), in a clean environment."""
        self.spec["root_commands"].append({"argv": [str(a) for a in argv], "cwd": cwd, "env": env})

    def file(self, path, text, mode=0o644, owner="root", group="root"):
        self.spec["files"].append({"path": path, "text": text, "mode": mode, "owner": owner, "group": group})

    def dir(self, path, mode=0o755, owner="root", group="root"):
        self.spec["dirs"].append({"path": path, "mode": mode, "owner": owner, "group": group})

    def writable(self, path):
        """ReadWritePaths=: one more directory that stays writable."""
        self.spec["writable"].append(path)

    def argv(self, commands=None, unit=None):
        """commands: argvs (the last one becomes the process); or unit: a unit's name, whose ExecStartPre= and
        ExecStart= are read inside the namespace after the root commands, from systemd's unit directories."""
        self.spec["commands"] = [[str(a) for a in c] for c in commands or []]
        self.spec["unit"] = unit
        self.spec["env"] = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        os.makedirs(self.workdir, exist_ok=True)
        spec_path = os.path.join(self.workdir, "unit-sandbox.json")
        with open(spec_path, "w") as f:
            json.dump(self.spec, f, indent=1)
        return ["unshare", "--mount", "--propagation", "private", "/usr/bin/python3",
                os.path.abspath(__file__), spec_path]

    def overlay_upper(self, path):
        """Where the namespace's writes to one of OVERLAID end up (to look at them from outside)."""
        return os.path.join(self.spec["upper"], path.strip("/").replace("/", "_"), "upper")


# ---- inside the namespace (run as a script) ----

def _uid(name):
    return name if isinstance(name, int) else pwd.getpwnam(name).pw_uid


def _gid(name):
    return name if isinstance(name, int) else grp.getgrnam(name).gr_gid


def _run(argv):
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def _unescape(field):
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mount_points():
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f]


def _under(path, prefixes):
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _setup(spec):
    for i, path in enumerate(spec["overlaid"]):
        base = os.path.join(spec["upper"], path.strip("/").replace("/", "_"))
        upper, work = os.path.join(base, "upper"), os.path.join(base, "work")
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        _run(["mount", "-t", "overlay", "overlay-%d" % i, "-o",
              "lowerdir=%s,upperdir=%s,workdir=%s" % (path, upper, work), path])
    for c in spec["root_commands"]:
        env = dict({"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"}, **(c["env"] or {}))
        proc = subprocess.run(c["argv"], cwd=c["cwd"], env=env, stdin=subprocess.DEVNULL,
                              stdout=sys.stderr, stderr=sys.stderr)
        if proc.returncode != 0:
            print("unit-sandbox: %s: exit %d" % (" ".join(c["argv"]), proc.returncode), file=sys.stderr)
            sys.exit(100)
    for d in spec["dirs"]:
        os.makedirs(d["path"], exist_ok=True)
        os.chown(d["path"], _uid(d["owner"]), _gid(d["group"]))
        os.chmod(d["path"], d["mode"])
    for f in spec["files"]:
        os.makedirs(os.path.dirname(f["path"]), exist_ok=True)
        with open(f["path"], "w") as out:
            out.write(f["text"])
        os.chown(f["path"], _uid(f["owner"]), _gid(f["group"]))
        os.chmod(f["path"], f["mode"])
    uid, gid = _uid(spec["user"]), _gid(spec["group"])
    # StateDirectory= and RuntimeDirectory= (0750, the user's), the only writable places under ProtectSystem=strict
    for path in UNIT_WRITABLE:
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, 0o750)
    for path in UNIT_WRITABLE + tuple(spec["writable"]):
        _run(["mount", "--bind", path, path])
    # PrivateTmp=yes (the test's own files under /tmp disappear from view, as they would for the service)
    for path in ("/tmp", "/var/tmp"):
        _run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", path])
    writable = UNIT_WRITABLE + tuple(spec["writable"]) + API_FS + ("/tmp", "/var/tmp")
    # A mount hidden under one of the overlays cannot be reached to remount it (nor by the service); what its
    # path leads to now must be read-only all the same.
    failed = [mp for mp in _mount_points() if not _under(mp, writable) and
              subprocess.run(["mount", "-o", "remount,bind,ro", mp], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0]
    for mp in failed:
        if os.path.exists(mp) and not os.statvfs(mp).f_flag & os.ST_RDONLY:
            print("unit-sandbox: cannot make %s read-only" % mp, file=sys.stderr)
            sys.exit(101)
    return uid, gid


def _as_user(uid, gid, argv):
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all", "--"] + argv


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    uid, gid = _setup(spec)
    env = {"PATH": PATH, "LANG": "C.UTF-8"}
    env.update(spec["env"])
    try:
        pw = pwd.getpwuid(uid)
        env.update(USER=pw.pw_name, LOGNAME=pw.pw_name, HOME=pw.pw_dir, SHELL=pw.pw_shell)
    except KeyError:
        pass
    commands = spec["commands"]
    if spec["unit"]:
        found = [os.path.join(d, spec["unit"]) for d in UNIT_PATH if os.path.exists(os.path.join(d, spec["unit"]))]
        if not found:
            print("unit-sandbox: %s is in none of %s" % (spec["unit"], " ".join(UNIT_PATH)), file=sys.stderr)
            sys.exit(102)
        with open(found[0]) as f:
            pre, start = unit_commands(f.read())
        print("unit-sandbox: %s: ExecStartPre=%s ExecStart=%s" % (found[0], pre, start), file=sys.stderr)
        commands = pre + [start]
    os.chdir(spec["cwd"])
    os.umask(0o077)
    *pre, start = commands
    for argv in pre:
        proc = subprocess.run(_as_user(uid, gid, argv), env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            print("unit-sandbox: ExecStartPre %s: exit %d" % (" ".join(argv), proc.returncode), file=sys.stderr)
            sys.exit(proc.returncode)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("setpriv", _as_user(uid, gid, start), env)


if __name__ == "__main__":
    main(sys.argv[1])
