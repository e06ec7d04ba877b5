"""(n) test_paygov.py with MaXacThuc as HMAC-SHA256 (the older platform's algorithm), on 100
payments: both ends (hub and tests/sim/paygov_sim.py) configured with `algorithm: hmac-sha256`; the sim answers errors as HTTP 200 with a MaLoi other than
"00" (the sink must refuse those just the same)."""
import os
import runpy

os.environ.setdefault("LT_PAYGOV_ALG", "hmac-sha256")
os.environ.setdefault("LT_PAYGOV_N", "100")
os.environ.setdefault("LT_PAYGOV_MALOI", "1")  # and the platform answering errors as 200 {MaLoi, MoTaLoi}
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_paygov.py"), run_name="__main__")
