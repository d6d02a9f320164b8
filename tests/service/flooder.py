"""A flood of requests from its own process (so that the flooding costs the measuring
process nothing): ``python flooder.py URL PATH THREADS SECONDS [KEY] [BODY_BYTES]``.
Prints the status counts as JSON. Bounded in time; it stops by itself."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit


def flood(url: str, path: str, threads: int, seconds: float, key: str = "",
          body_bytes: int = 0) -> Counter:
    parts = urlsplit(url)
    body = json.dumps({"title": "焊工", "description": "x" * max(0, body_bytes - 40)}).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    counts: Counter = Counter()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.monotonic() < end:
            try:
                conn.request("POST", path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                status = "error"
                conn.close()
            with lock:
                counts[status] += 1

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 15)
    return counts


if __name__ == "__main__":
    url, path, threads, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    key = sys.argv[5] if len(sys.argv) > 5 else ""
    size = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    print(json.dumps({str(k): v for k, v in flood(url, path, threads, seconds, key, size)
                      .items()}))
