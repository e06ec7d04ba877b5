"""The install layout, the service unit and the Debian package.

`cmake --install` into a scratch DESTDIR with prefix /usr must lay out the FHS paths; the
installed binary lints the installed configuration and finds its pages; `systemd-analyze verify`
accepts the unit (pointed at the scratch tree); `cpack -G DEB` builds a package whose control
data declares the libraries it needs and the configuration as a conffile."""
import glob
import os
import subprocess
import sys
import tempfile

BUILD, SRC = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)
    return cond


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


root = tempfile.mkdtemp(prefix="lt-install-")
r = run(["cmake", "--install", BUILD, "--prefix", "/usr"], env=dict(os.environ, DESTDIR=root))
check(r.returncode == 0, f"cmake --install: {r.stderr.strip()}")
for path in ["usr/bin/lienthong", "etc/lienthong/lienthong.yaml", "usr/lib/systemd/system/lienthong.service",
             "usr/share/man/man1/lienthong.1", "usr/share/man/man1/lienthong-run.1",
             "usr/share/lienthong/schemas/config/lienthong.schema.json",
             "usr/share/lienthong/schemas/edxml/edxml-document.xsd",
             "usr/share/lienthong/mappings/dvcqg/dong-bo-ho-so.yaml", "usr/share/lienthong/examples/demo.yaml",
             "usr/share/doc/lienthong/config.md", "usr/share/doc/lienthong/README.md"]:
    check(os.path.isfile(os.path.join(root, path)), f"installed: /{path}")
check(not glob.glob(os.path.join(root, "usr/share/lienthong/mappings/**/*.c"), recursive=True),
      "no C sources among the installed mappings")
binary = os.path.join(root, "usr/bin/lienthong")
r = run([binary, "lint", os.path.join(root, "etc/lienthong/lienthong.yaml")])
check(r.returncode == 0, f"the installed binary lints the installed configuration: {r.stderr.strip()}")
r = run(["man", "-l", os.path.join(root, "usr/share/man/man1/lienthong-lint.1")], env=dict(os.environ, MANWIDTH="100"))
check(r.returncode == 0 and "lienthong lint CONFIG" in r.stdout, "man page lienthong-lint(1) renders with its usage")

unit = os.path.join(root, "usr/lib/systemd/system/lienthong.service")
text = open(unit).read()
for key in ["DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=lienthong", "NoNewPrivileges=yes",
            "CapabilityBoundingSet=\n"]:
    check(key in text, f"unit hardening: {key.strip()}")
scratch_unit = os.path.join(root, "lienthong.service")
with open(scratch_unit, "w") as f:
    f.write(text.replace("/usr/bin/lienthong", binary).replace("/etc/lienthong", os.path.join(root, "etc/lienthong")))
r = run(["systemd-analyze", "verify", scratch_unit], env=dict(os.environ, MANPATH=os.path.join(root, "usr/share/man")))
check(r.returncode == 0 and not r.stderr.strip(), f"systemd-analyze verify: {r.stderr.strip()}")

pkg = tempfile.mkdtemp(prefix="lt-deb-")
r = run(["cpack", "-G", "DEB", "-B", pkg], cwd=BUILD)
debs = glob.glob(os.path.join(pkg, "*.deb"))
check(r.returncode == 0 and len(debs) == 1, f"cpack built one .deb: {r.stdout[-400:]} {r.stderr[-400:]}")
if debs:
    info = run(["dpkg-deb", "-I", debs[0]]).stdout
    depends = next((l for l in info.splitlines() if l.strip().startswith("Depends:")), "")
    # librdkafka 2.8.0 is linked statically (scripts/bootstrap): its libraries, not Debian's 2.0.2.
    for lib in ["libzstd1", "liblz4-1", "libssl3", "zlib1g", "libsqlite3-0", "libxmlsec1-openssl", "libmicrohttpd12",
                "libjansson4"]:
        check(lib in depends, f"Depends declares {lib}")
    check("librdkafka" not in depends, f"Depends names no librdkafka (linked statically): {depends}")
    contents = run(["dpkg-deb", "-c", debs[0]]).stdout
    for path in ["./usr/bin/lienthong", "./etc/lienthong/lienthong.yaml", "./usr/lib/systemd/system/lienthong.service",
                 "./usr/share/man/man1/lienthong.1"]:
        check(path in contents, f"package holds {path}")
    ctl = tempfile.mkdtemp(prefix="lt-ctl-")
    run(["dpkg-deb", "-e", debs[0], ctl])
    conffiles = open(os.path.join(ctl, "conffiles")).read() if os.path.exists(os.path.join(ctl, "conffiles")) else ""
    check("/etc/lienthong/lienthong.yaml" in conffiles, "the configuration is a conffile")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
