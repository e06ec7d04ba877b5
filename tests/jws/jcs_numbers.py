#!/usr/bin/env python3
"""Checks hub_jcs_number (ECMAScript Number.prototype.toString) against an independent
implementation: Python's repr() gives the shortest round-trip digits (David Gay's algorithm,
closest on ties), which are laid out here by the ECMAScript rules. Usage: jcs_numbers.py TEST_JCS_BINARY"""
import struct, subprocess, sys


def es_format(d):
    if d == 0:
        return "0"
    if d < 0:
        return "-" + es_format(-d)
    r = repr(d)
    mant, _, exp = r.partition("e")
    exp = int(exp) if exp else 0
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    digits = (ip + fp).lstrip("0")
    lead_zeros = len(ip + fp) - len((ip + fp).lstrip("0"))
    n = len(ip) + exp - lead_zeros  # value = 0.DIGITS x 10^n
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    return (digits[0] + ("." + digits[1:] if k > 1 else "")) + "e" + sign + str(abs(e))


def main():
    out = subprocess.run([sys.argv[1], "--numbers", "200000", "12345"], check=True, capture_output=True, text=True).stdout
    n = bad = 0
    for line in out.splitlines():
        bits, got = line.split()
        d = struct.unpack(">d", bytes.fromhex(bits))[0]
        want = es_format(d)
        n += 1
        if got != want:
            bad += 1
            if bad < 20:
                print(f"MISMATCH {bits}: got {got} want {want}")
    print(f"{n} numbers checked, {bad} mismatches")
    sys.exit(1 if bad or n < 100000 else 0)


main()
