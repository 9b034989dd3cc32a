"""The Debian package (make deb): lintian-clean, one version everywhere, installed with apt into a fresh Debian 12
root (which must bring the runtime libraries), run as the unit runs it, as user healthd, and purged cleanly."""
import json
import os
import re
import signal
import subprocess

from harness import wait_until
from harness.healthd import REPO, healthd_bin
from harness.package import (FRESHROOT, debian_package, in_root, installed_in_root, makefile_version, passwd_entry,
                             start_unit_in_root)
from harness.util import stop_popen, unregister_pid

UNIT = "lib/systemd/system/healthd.service"


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True, check=True).stdout.strip()


def test_one_version_everywhere():
    version = makefile_version()
    out = subprocess.run([healthd_bin(), "--version"], capture_output=True, text=True, check=True).stdout
    changelog = subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(REPO, "debian/changelog"), "-S",
                                "Version"], capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(REPO, "CHANGELOG.md")) as f:
        notes = re.findall(r"^## (\S+)", f.read(), re.M)
    with open(os.path.join(REPO, "man/healthd.8")) as f:
        man = re.search(r'^\.TH HEALTHD 8 "[^"]*" "healthd (\S+)"', f.read(), re.M).group(1)
    seen = {"Makefile": version, "healthd --version": out.split()[1], "debian/changelog": changelog,
            "CHANGELOG.md": notes[0], "man page": man, "package": deb_field(debian_package(), "Version")}
    print("versions: %s" % seen)
    assert set(seen.values()) == {version}, seen


def test_package_is_lintian_clean_and_holds_what_it_should():
    deb = debian_package()
    cp = subprocess.run(["lintian", "--fail-on", "error,warning", deb], capture_output=True, text=True, timeout=600)
    print("lintian: exit %d %s" % (cp.returncode, cp.stdout.strip() or "(nothing to report)"))
    assert cp.returncode == 0 and not re.search(r"^[EW]: ", cp.stdout, re.M), cp.stdout + cp.stderr
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1].lstrip("."): line.split()[0] for line in listing.splitlines()}
    for path in ("/usr/sbin/healthd", "/" + UNIT, "/usr/lib/sysusers.d/healthd.conf",
                 "/usr/share/man/man8/healthd.8.gz", "/usr/share/doc/healthd/copyright",
                 "/usr/share/doc/healthd/examples/default.json", "/usr/share/doc/healthd/examples/backend.json"):
        assert path in files, "%s is not in the package" % path
    assert files["/etc/healthd/healthd.json"] == "-rw-r-----"
    conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True).stdout
    assert b"conffiles" in conffiles
    depends = deb_field(deb, "Depends")
    print("Depends: %s" % depends)
    for lib in ("libcjson1", "libcurl4", "libevent-2.1-7", "libhiredis0.14", "libmariadb3", "libsystemd0"):
        assert lib in depends, "%s missing from ${shlibs:Depends}" % lib


def test_package_installs_into_a_fresh_root_runs_as_healthd_and_purges(workdirs):
    deb = debian_package()
    work = workdirs.new("package")
    root = os.path.join(work, "root")
    libraries = sorted({d.split()[0] for d in deb_field(deb, "Depends").split(",") if d.strip().startswith("lib")})
    try:
        cp = subprocess.run([FRESHROOT, "new", root], capture_output=True, text=True, timeout=600)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        before = installed_in_root(root, libraries)
        os.makedirs(os.path.join(root, "root/pkg"))
        subprocess.run(["cp", deb, os.path.join(root, "root/pkg/")], check=True)
        rc, out = in_root(root, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install "
                          "-y -qq --no-install-recommends /root/pkg/%s" % os.path.basename(deb))
        assert rc == 0, out[-4000:]
        after = installed_in_root(root, libraries)
        print("runtime libraries installed by apt with the package: %s (already there: %s)"
              % (sorted(after - before), sorted(before)))
        assert after == set(libraries) and after != before

        user, group = passwd_entry(root, "healthd"), passwd_entry(root, "healthd", "group")
        assert user and group, "the package made no user healthd"
        st = os.stat(os.path.join(root, "etc/healthd/healthd.json"))
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 0, int(group[2])), st
        # enabled (started at the next boot), not started now: deb-systemd-helper's link is there
        wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants/healthd.service")
        print("enabled on install: %s -> %s" % (wants, os.readlink(wants) if os.path.islink(wants) else None))
        assert os.path.islink(wants)
        # --man=no: a minbase root has no man-db to look the Documentation= page up with (it is in the package)
        rc, out = in_root(root, "systemd-analyze", "verify", "--man=no", "/" + UNIT)
        print("systemd-analyze verify: exit %d %s" % (rc, out.strip()))
        assert rc == 0 and "healthd.service" not in out, out

        # What systemd does, in a network namespace of its own so that the default ports (9110, 9111) are free.
        with open(os.path.join(root, UNIT)) as f:
            proc, log_path = start_unit_in_root(root, work, f.read(), user, own_netns=True)
        try:
            def health():
                if proc.poll() is not None:
                    return "exited"
                cp = subprocess.run(["nsenter", "--net=/proc/%d/ns/net" % proc.pid, "curl", "-s", "-m", "1", "-w",
                                     "\n%{http_code}", "http://127.0.0.1:9110/health"], capture_output=True, text=True)
                body, _, code = cp.stdout.rpartition("\n")
                if code != "200":
                    return None
                doc = json.loads(body)
                return doc if all(c["status"] == "up" for c in doc["checks"].values()) else None

            doc = wait_until(health, 30, interval=0.2, what="/health of the installed daemon, every check up")
            with open(log_path, errors="replace") as f:
                assert doc != "exited", "the unit's commands exited %s: %s" % (proc.returncode, f.read())
            print("installed default configuration as healthd: 200 %s"
                  % {n: c["status"] for n, c in doc["checks"].items()})
            assert sorted(doc["checks"]) == ["root-disk", "state-disk"]
        finally:
            stop_popen(proc, timeout=15, sig=signal.SIGTERM)
            unregister_pid(proc.pid)

        rc, out = in_root(root, "dpkg", "--purge", "healthd")
        assert rc == 0, out
        left = [p for p in ("usr/sbin/healthd", UNIT, "usr/lib/sysusers.d/healthd.conf", "etc/healthd",
                            "var/lib/healthd", "usr/share/doc/healthd") if os.path.lexists(os.path.join(root, p))]
        rc, status = in_root(root, "dpkg-query", "-W", "-f", "${Status}", "healthd")
        print("after dpkg --purge: left %s; dpkg status %r" % (left, status.strip()))
        assert left == [] and "installed" not in status.replace("not-installed", "")
    finally:
        subprocess.run([FRESHROOT, "destroy", root], capture_output=True, timeout=300)
