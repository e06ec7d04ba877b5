"""Counting checks for the trust test scripts: check(name, ok, why) and done() printing
"N passed, N failed" and exiting 1 on any failure."""
import sys

_counts = [0, 0]


def check(name, ok, why=""):
    if ok:
        _counts[0] += 1
    else:
        _counts[1] += 1
        print("FAIL %s %s" % (name, why))
    return ok


def done(extra_failures=0):
    print("%d passed, %d failed" % (_counts[0], _counts[1] + extra_failures))
    sys.exit(1 if _counts[1] + extra_failures else 0)
