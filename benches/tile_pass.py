#!/usr/bin/env python3
"""One pass over a list of request paths: each path requested once (in list order,
shared by CONCURRENCY workers on keep-alive connections, with Accept-Encoding: gzip).

    tile_pass.py BASE_URL PATHS_FILE CONCURRENCY

Prints "seconds requests failures" (failures: anything but 200/204 or a broken
connection). Standard library only.
"""
import http.client
import sys
import threading
import time
import urllib.parse


def main():
    base, paths_file, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    url = urllib.parse.urlsplit(base)
    with open(paths_file) as f:
        paths = [line.strip() for line in f if line.strip()]
    lock = threading.Lock()
    state = {"next": 0, "failures": 0}

    def worker():
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(paths):
                break
            try:
                conn.request("GET", paths[i], headers={"Accept-Encoding": "gzip"})
                response = conn.getresponse()
                response.read()
                ok = response.status in (200, 204)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
                ok = False
            if not ok:
                with lock:
                    state["failures"] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{time.monotonic() - started:.3f} {len(paths)} {state['failures']}")


if __name__ == "__main__":
    main()
