"""The Debian package as the tests use it: built with `make deb`, installed into fresh roots (tests/freshroot.sh)."""
import os
import re
import subprocess

from harness.healthd import REPO

FRESHROOT = os.path.join(REPO, "tests", "freshroot.sh")
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def makefile_version():
    with open(os.path.join(REPO, "Makefile")) as f:
        return re.search(r"^VERSION := (\S+)$", f.read(), re.M).group(1)


def user_env():
    """This environment without what make passes down to its children (the package is built as a user would)."""
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SANITIZE", "BUILD", "WERROR", "CFLAGS",
             "UBSAN_OPTIONS")
    return {k: v for k, v in os.environ.items() if k not in outer}


_built = {}


def debian_package():
    """build/healthd_VERSION_amd64.deb from `make deb`, built once per test run."""
    if "deb" not in _built:
        cp = subprocess.run(["make", "-C", REPO, "--no-print-directory", "deb"], capture_output=True, text=True,
                            timeout=1200, env=user_env())
        assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
        deb = os.path.join(REPO, "build", "healthd_%s_amd64.deb" % makefile_version())
        assert os.path.exists(deb), "make deb made no %s" % deb
        _built["deb"] = deb
    return _built["deb"]


def in_root(root, *cmd, timeout=600):
    cp = subprocess.run([FRESHROOT, "run", root] + list(cmd), capture_output=True, text=True, timeout=timeout)
    return cp.returncode, cp.stdout + cp.stderr


def installed_in_root(root, packages):
    cp = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f", "${Package} ${Status}\n"] + packages,
                        capture_output=True, text=True)
    return {line.split()[0] for line in cp.stdout.splitlines() if line.endswith(" install ok installed")}


def passwd_entry(root, name, db="passwd"):
    with open(os.path.join(root, "etc", db)) as f:
        return next((line.split(":") for line in f if line.startswith(name + ":")), None)


def start_unit_in_root(root, work, unit_text, user, own_netns=False):
    """What systemd does for the unit in `root`: StateDirectory= and RuntimeDirectory= owned by healthd, then
    ExecStartPre= and ExecStart= as user healthd without privileges. own_netns: in a network namespace of its own
    (the default ports stay free). Returns (Popen, log path); the caller stops it with stop_popen."""
    import shlex
    from harness.proc import die_with_parent
    from harness.unit_sandbox import unit_commands
    from harness.util import register_pid

    pre, start = unit_commands(unit_text)
    for d in ("var/lib/healthd", "run/healthd"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chown(os.path.join(root, d), int(user[2]), int(user[3]))
        os.chmod(os.path.join(root, d), 0o750)
    script = "umask 077; %s && exec %s" % (" && ".join(shlex.join(p) for p in pre), shlex.join(start))
    cmd = ["chroot", root, "/usr/bin/env", "-i", "PATH=" + ROOT_PATH, "setpriv", "--reuid=healthd",
           "--regid=healthd", "--init-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all",
           "sh", "-c", script]
    if own_netns:
        cmd = ["unshare", "--net", "sh", "-c", "ip link set lo up && exec " + shlex.join(cmd)]
    log_path = os.path.join(work, "unit.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)
    register_pid(proc.pid, "healthd", "the package's unit commands in a fresh root")
    return proc, log_path
