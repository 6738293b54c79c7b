#!/usr/bin/env python3
"""Creates N tenants through latchkey's admin API (keep-alive, 4 connections) and prints the
seconds it took. Used by bench/run.sh for the many-tenants scenarios.

    python3 bench/many_tenants.py BASE_URL ADMIN_TOKEN COUNT
"""
import concurrent.futures
import http.client
import json
import sys
import time
import urllib.parse


def create(base, token, slugs):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for slug in slugs:
        conn.request("POST", "/admin/tenants", json.dumps({"slug": slug}), headers)
        res = conn.getresponse()
        body = res.read()
        if res.status != 201:
            raise SystemExit(f"creating {slug}: {res.status} {body[:200]!r}")
    conn.close()


def main():
    base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    slugs = [f"t{i}" for i in range(count)]
    workers = 4
    chunks = [slugs[i::workers] for i in range(workers)]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(create, base, token, c) for c in chunks]:
            f.result()
    print(f"{time.monotonic() - start:.1f}")


if __name__ == "__main__":
    main()
