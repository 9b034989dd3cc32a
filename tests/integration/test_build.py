"""The build itself: Debian's hardening on the shipped binary, one version number, and the split of `make deps`."""

import os
import re
import subprocess

from harness.healthd import healthd_bin as healthd_binary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def clean_make_env():
    # `make test` runs this suite again with SANITIZE=...; that must not reach the plain build here.
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SANITIZE")}


def makefile_var(name):
    out = subprocess.run(["make", "-s", "--no-print-directory", "-C", REPO, "-f", "Makefile", "-f", "-",
                          "print-var"], input="print-var:\n\t@echo $(%s)\n" % name, capture_output=True,
                         text=True, check=True, env=clean_make_env()).stdout
    return out.strip()


def test_shipped_binary_has_debian_hardening():
    # FORTIFY, stack protector, PIE, relro and bind-now, as `hardening-check` (devscripts) reads the binary.
    # Always the shipped build (build/healthd): the sanitizer build drops FORTIFY on purpose, as ASan checks more.
    # Control-flow protection needs every linked object built with it, which Debian 12's own are not.
    shipped = os.path.join(REPO, "build", "healthd")
    subprocess.run(["make", "-C", REPO, "-s", "build/healthd"], check=True, env=clean_make_env())
    r = subprocess.run(["hardening-check", "--nocfprotection", shipped], capture_output=True, text=True)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ("Stack protected: yes", "Fortify Source functions: yes", "Read-only relocations: yes",
                 "Immediate binding: yes", "Position Independent Executable: yes"):
        assert line in r.stdout, r.stdout
    assert "-fstack-clash-protection" in makefile_var("CFLAGS")


def test_version_comes_from_the_makefile():
    version = makefile_var("VERSION")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    out = subprocess.run([healthd_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "healthd " + version


def test_building_installs_no_test_package():
    # `make`, `make install`, `make unit` and `make run` depend on the build packages only.
    build = set(makefile_var("DEB_BUILD").split())
    test = set(makefile_var("DEB_TEST").split())
    for server in ("mariadb-server", "redis-server", "haproxy", "prometheus", "prometheus-alertmanager",
                   "ansible-core", "valgrind"):
        assert server in test and server not in build, server
    plan = subprocess.run(["make", "-C", REPO, "-n", "-p", "all", "install", "unit", "run"], capture_output=True,
                          text=True, env=clean_make_env()).stdout
    for target in ("all", "unit", "run", "install"):
        m = re.search(r"^%s:(.*)$" % target, plan, re.M)
        assert m, target
        prereqs = m.group(1).split()
        assert "deps-test" not in prereqs and "deps" not in prereqs, (target, prereqs)
