"""(n) test_paygov.py with MaXacThuc as HMAC-SHA256 (the older platform's algorithm), on 100
payments: both ends (hub and tests/sim/paygov_sim.py) configured with `algorithm: hmac-sha256`."""
import os
import runpy

os.environ.setdefault("LT_PAYGOV_ALG", "hmac-sha256")
os.environ.setdefault("LT_PAYGOV_N", "100")
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_paygov.py"), run_name="__main__")
