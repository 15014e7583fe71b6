"""A bounded write load through the load balancer, with one replica killed part-way.

    python3 .ci/load.py --url http://127.0.0.1:8080 --token TOKEN --requests 400 --rate 50 \
        --kill-after 100 --kill 'docker kill vocab-ci-replica-2' --acked acked.txt

Sends REQUESTS `POST /words` (word `load-<n>`) at about RATE a second from a few threads, runs
the --kill command once KILL-AFTER of them have answered, and writes the words whose creation
was acknowledged (201) to --acked, one a line, for the caller to find in the database. Prints
one JSON summary: statuses, which upstream (nginx's X-Upstream-Addr) answered, the kill time,
and the requests started more than --grace seconds after the kill that nginx still sent to the
killed replica's address (--killed-addr). Exits 1 when any answer is neither 201 nor the
load balancer's 503 (a request in flight on the killed replica, at most one a thread), or when
nginx kept sending to the killed replica after the grace period. Standard library only: it runs
on the host.
"""

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--kill-after", type=int, default=100)
    parser.add_argument("--kill", required=True, help="shell command that kills one replica")
    parser.add_argument("--killed-addr", required=True, help="its address:port for nginx")
    parser.add_argument("--grace", type=float, default=3.0)
    parser.add_argument("--acked", required=True)
    args = parser.parse_args()

    target = urlsplit(args.url)
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    results: list[dict] = []
    lock = threading.Lock()
    next_index = iter(range(args.requests))
    answered = threading.Semaphore(0)
    start = time.monotonic()

    def send(n: int) -> dict:
        body = json.dumps({"word": f"load-{n}", "definition": f"written under load, #{n}"})
        began = time.monotonic()
        try:
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=15)
            connection.request("POST", "/words", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            status, upstream = response.status, response.getheader("X-Upstream-Addr", "")
        except OSError as exc:
            status, upstream = f"error: {exc}", ""
        return {"n": n, "began": began, "status": status, "upstream": upstream}

    def worker() -> None:
        while True:
            with lock:
                n = next(next_index, None)
            if n is None:
                return
            delay = start + n / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            result = send(n)
            with lock:
                results.append(result)
            answered.release()

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for _ in range(min(args.kill_after, args.requests)):
        answered.acquire()
    subprocess.run(args.kill, shell=True, check=True, capture_output=True)
    killed_at = time.monotonic()
    for thread in threads:
        thread.join()

    acked = sorted(f"load-{r['n']}" for r in results if r["status"] == 201)
    with open(args.acked, "w", encoding="utf-8") as out:
        out.write("".join(f"{word}\n" for word in acked))
    statuses = Counter(str(r["status"]) for r in results)
    answered_by = Counter(r["upstream"].split(", ")[-1] for r in results if r["upstream"])
    after_kill = [r for r in results if r["began"] > killed_at]
    retried = [r for r in after_kill if r["upstream"].count(",") > 0]
    late = [
        r
        for r in results
        if r["began"] > killed_at + args.grace and args.killed_addr in r["upstream"]
    ]
    summary = {
        "requests": len(results),
        "seconds": round(time.monotonic() - start, 1),
        "statuses": dict(statuses),
        "acknowledged": len(acked),
        "answered_by": dict(answered_by),
        "killed_after_seconds": round(killed_at - start, 1),
        "started_after_kill": len(after_kill),
        "passed_on_after_a_failed_try": len(retried),
        f"sent_to_killed_replica_{args.grace}s_after_kill": len(late),
    }
    print(json.dumps(summary, indent=1))
    unexpected = {s: c for s, c in statuses.items() if s not in ("201", "503")}
    # Only requests in flight on the killed replica may fail: at most one a thread.
    if statuses["503"] > args.threads:
        unexpected["503"] = statuses["503"]
    if unexpected:
        print(f"unexpected answers: {unexpected}", file=sys.stderr)
    if late:
        print(f"nginx still sent requests to {args.killed_addr}: {late[:3]}", file=sys.stderr)
    return 1 if unexpected or late or len(results) != args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
