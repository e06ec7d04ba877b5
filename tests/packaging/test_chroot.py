"""The .deb on a fresh Debian 12: installed with apt in a clean debootstrap chroot (so apt has to
find every package its Depends names), `lienthong demo` run from the installed paths inside it
(no source tree, no JVM), and `systemd-analyze verify` on the installed unit.

The minimal bookworm (debootstrap --variant=minbase, the mirror apt on this machine uses) is
cached as a tarball under SRC/.cache/debootstrap, and the packages apt fetches are cached there
too, so reruns take a minute rather than several. Needs root (chroot, mounts); without root it
says so and is skipped (exit 77)."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

BUILD, SRC = sys.argv[1], sys.argv[2]
CACHE = os.path.join(SRC, ".cache", "debootstrap")
ROOT_TGZ = os.path.join(CACHE, "bookworm-minbase-root.tar.gz")  # a finished chroot
DEBS_TGZ = os.path.join(CACHE, "bookworm-minbase-amd64.tgz")  # debootstrap --make-tarball
ARCHIVES = os.path.join(CACHE, "apt-archives")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)
    return cond


def run(args, timeout=900, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        print(f"$ {' '.join(args)} -> {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}", flush=True)
    return r


def mirror():
    """The Debian mirror apt on this machine uses (deb822 or one-line sources)."""
    for path in glob.glob("/etc/apt/sources.list.d/*.sources") + ["/etc/apt/sources.list"]:
        try:
            text = open(path).read()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s",
                                                                             text, re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


if os.geteuid() != 0:
    print("SKIP: the chroot install test needs root (debootstrap, chroot, mounts); run it as root (CI does)")
    sys.exit(77)
if not shutil.which("debootstrap"):
    print("FAIL: debootstrap is missing: scripts/bootstrap installs it")
    sys.exit(1)

os.makedirs(ARCHIVES, exist_ok=True)
work = tempfile.mkdtemp(prefix="lt-chroot-")
root = os.path.join(work, "root")
mounts = []


def mount(*args, target):
    if run(["mount", *args, target]).returncode == 0:
        mounts.append(target)


try:
    # 1. A clean minimal bookworm: from the cached finished chroot, else debootstrap (from the
    #    cached package tarball when there is one) and cache the result.
    os.makedirs(root)
    if os.path.isfile(ROOT_TGZ):
        check(run(["tar", "-xzf", ROOT_TGZ, "-C", root]).returncode == 0, "unpacked the cached minimal bookworm")
    else:
        url = mirror()
        if not os.path.isfile(DEBS_TGZ):
            r = run(["debootstrap", "--variant=minbase", f"--make-tarball={DEBS_TGZ}.part", "bookworm",
                     os.path.join(work, "dl"), url], timeout=1800)
            if r.returncode == 0:
                os.rename(DEBS_TGZ + ".part", DEBS_TGZ)
        r = run(["debootstrap", "--variant=minbase"] + ([f"--unpack-tarball={DEBS_TGZ}"] if os.path.isfile(DEBS_TGZ) else [])
                + ["bookworm", root, url], timeout=1800)
        if not check(r.returncode == 0, f"debootstrap a minimal bookworm from {url}"):
            raise SystemExit
        run(["tar", "-czf", ROOT_TGZ + ".part", "-C", root, "."])
        os.replace(ROOT_TGZ + ".part", ROOT_TGZ)
    check(not os.path.exists(os.path.join(root, "usr/bin/lienthong")), "the chroot starts without lienthong")
    check(not glob.glob(os.path.join(root, "usr/lib/jvm")), "the chroot has no JVM")

    # 2. The package, built from this build tree.
    pkg = os.path.join(work, "pkg")
    r = run(["cpack", "-G", "DEB", "-B", pkg], cwd=BUILD)
    debs = glob.glob(os.path.join(pkg, "*.deb"))
    if not check(r.returncode == 0 and len(debs) == 1, "cpack built one .deb"):
        raise SystemExit
    shutil.copy(debs[0], os.path.join(root, "tmp", "lienthong.deb"))

    # 3. apt installs it with what its Depends names, from the mirror (archives cached).
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    mount("--bind", "/proc", target=os.path.join(root, "proc"))
    mount("--bind", "/dev", target=os.path.join(root, "dev"))
    mount("--bind", ARCHIVES, target=os.path.join(root, "var/cache/apt/archives"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
           "HOME": "/root", "ASAN_OPTIONS": "detect_leaks=0"}  # a sanitizer build leaks nothing new here
    r = run(["chroot", root, "apt-get", "update", "-q"], env=env)
    check(r.returncode == 0, "apt-get update in the chroot")
    r = run(["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends", "/tmp/lienthong.deb"],
            env=env, timeout=1800)
    check(r.returncode == 0, "apt-get install ./lienthong.deb (its Depends from the mirror)")
    for path in ["usr/bin/lienthong", "usr/lib/systemd/system/lienthong.service", "etc/lienthong/lienthong.yaml",
                 "usr/share/lienthong/examples/demo/dossier.json", "usr/share/man/man1/lienthong-demo.1"]:
        check(os.path.isfile(os.path.join(root, path)), f"installed: /{path}")
    r = run(["chroot", root, "lienthong", "version"], env=env)
    check(r.returncode == 0 and "librdkafka 2.8.0" in r.stdout, f"the installed binary runs librdkafka 2.8.0: {r.stdout!r}")
    check(not glob.glob(os.path.join(root, "usr/lib/*/librdkafka.so*")), "apt installed no shared librdkafka")
    r = run(["chroot", root, "lienthong", "lint", "/etc/lienthong/lienthong.yaml"], env=env)
    check(r.returncode == 0, "the installed binary lints the installed configuration")

    # 4. The README's first command, from the installed paths: no source tree in the chroot.
    check(not os.path.exists(os.path.join(root, SRC.lstrip("/"))), "the chroot holds no source tree")
    r = run(["chroot", root, "sh", "-c", "cd /root && lienthong demo --dir /root/demo"], env=env, timeout=600)
    out = r.stdout
    check(r.returncode == 0, f"lienthong demo in the chroot exits 0 (exit {r.returncode})")
    for n in range(1, 5):
        check(f"Journey {n}:" in out, f"the demo printed journey {n}")
    check("lt.sig=verified" in out, "the demo's document was signed and verified")
    check(os.path.isfile(os.path.join(root, "root/demo/dms-outbox/cong-van-123.edxml")),
          "the demo wrote the document to its outbox")
    check(not glob.glob(os.path.join(root, "usr/lib/jvm")) and not os.path.exists(os.path.join(root, "usr/bin/java")),
          "still no JVM after installing lienthong")

    # 5. The unit as installed, verified inside the chroot by its own systemd (minbase has none; a
    #    Debian 12 host that runs the service has it, and man-db for the unit's Documentation=).
    unit = os.path.join(root, "usr/lib/systemd/system/lienthong.service")
    r = run(["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd", "man-db"],
            env=env, timeout=1800)
    check(r.returncode == 0, "apt-get install systemd man-db in the chroot")
    r = run(["chroot", root, "systemd-analyze", "verify", "/usr/lib/systemd/system/lienthong.service"], env=env)
    check(r.returncode == 0 and not r.stderr.strip(),
          f"systemd-analyze verify (the chroot's) accepts the installed unit: {r.stderr.strip()[-800:]}")
    check("ExecStart=/usr/bin/lienthong run /etc/lienthong/lienthong.yaml" in open(unit).read(),
          "the unit runs the installed binary on the installed configuration")
except SystemExit:
    pass
finally:
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", m], capture_output=True)
    # Never delete through a bind mount (it would reach the host's /dev): only once none is left.
    left = [l.split()[1] for l in open("/proc/mounts") if l.split()[1].startswith(work)]
    if not left:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"left {work} (a mount is still there)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
