"""Downloads the price list from a slow mirror that has outages (simulated on run attempt 1)."""

import os
import sys
import time

if os.environ.get("MIRROR_OUTAGE") == "1" and os.environ.get("GITHUB_RUN_ATTEMPT") == "1":
    print("Downloading https://mirror.example.net/prices.csv", flush=True)
    print("curl: (56) Recv failure: Connection reset by peer", file=sys.stderr)
    sys.exit(56)
time.sleep(float(os.environ.get("MIRROR_SECONDS", "60")))
print("Downloaded prices.csv (118 rows)")
