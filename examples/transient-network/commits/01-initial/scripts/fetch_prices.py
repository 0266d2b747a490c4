"""Downloads the price list from a mirror that has outages (simulated on run attempt 1)."""
import os
import sys

if os.environ.get("MIRROR_OUTAGE") == "1" and os.environ.get("GITHUB_RUN_ATTEMPT") == "1":
    print("Downloading https://mirror.example.net/prices.csv", flush=True)
    print("curl: (56) Recv failure: Connection reset by peer", file=sys.stderr)
    sys.exit(56)
print("Downloaded prices.csv (118 rows)")
