#!/usr/bin/env python3
"""Clients of `hyperadapt serve` over loopback (http.client), for tests/examples/model_directory.sh.

  server_clients.py PORT EXPECTED.jsonl SENTENCES.txt [--clients 32] [--requests 50]

EXPECTED.jsonl holds `hyperadapt predict`'s answer for each line of SENTENCES.txt (task sst2). Every client
sends --requests requests of 1 to 4 sentences drawn by its own seed; each answer must give the label of
EXPECTED and probabilities within 1e-5 of it (the server batches concurrent requests, so a sentence may run
in another batch than predict's). Malformed requests, sent in between, must get their 4xx code and a JSON
error naming the field. Prints a summary; exits 1 on the first wrong answer.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time


def request(port, method, path, body=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request(method, path, body=data, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    return r.status, json.loads(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("expected")
    ap.add_argument("sentences")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--bench", action="store_true",
                    help="one sentence per request, no malformed ones; prints requests/s (benchmarks/compare_predict.sh)")
    a = ap.parse_args()
    sentences = [l.rstrip("\n") for l in open(a.sentences, encoding="utf-8")]
    expected = [json.loads(l) for l in open(a.expected)]
    assert len(sentences) == len(expected)

    status, health = request(a.port, "GET", "/health")
    assert status == 200 and health["status"] == "ok", health
    status, tasks = request(a.port, "GET", "/v1/tasks")
    assert status == 200 and tasks["tasks"][0]["name"] == "sst2", tasks

    malformed = [  # (body or raw bytes, status, field)
        (None, b'{"task": "sst2", "texts": ["x"', 400, "body"),
        ({"task": "cola", "texts": ["x"]}, None, 404, "task"),
        ({"task": "sst2", "texts": [3]}, None, 400, "texts[0]"),
        ({"task": "sst2", "texts": []}, None, 400, "texts"),
        ({"task": "sst2", "pairs": [["a", "b"]]}, None, 400, "pairs"),
        ({"task": "stsb", "pairs": [["a"]]}, None, 400, "pairs[0]"),
        ({"task": "sst2", "texts": ["x"], "colour": 1}, None, 400, "colour"),
        ({"task": "sst2", "texts": ["x"] * 300}, None, 413, "texts"),
        (None, b"[" * 100000, 400, "body"),
    ]
    errors, answered, rows = [], [0], [0]
    lock = threading.Lock()

    def client(seed):
        rng = random.Random(seed)
        try:
            for k in range(a.requests):
                if k % 10 == 5 and not a.bench:  # a malformed request among the good ones
                    body, raw, want, field = malformed[rng.randrange(len(malformed))]
                    status, j = request(a.port, "POST", "/v1/predict", body, raw)
                    if status != want or j.get("field") != field or not j.get("error"):
                        raise AssertionError(f"malformed {body or raw[:40]!r}: {status} {j}, wanted {want} naming {field}")
                    continue
                picks = [rng.randrange(len(sentences)) for _ in range(1 if a.bench else rng.randint(1, 4))]
                status, j = request(a.port, "POST", "/v1/predict", {"task": "sst2", "texts": [sentences[i] for i in picks]})
                if status != 200:
                    raise AssertionError(f"status {status}: {j}")
                for i, p in zip(picks, j["predictions"]):
                    e = expected[i]
                    if p["label"] != e["label"] or max(abs(x - y) for x, y in zip(p["probabilities"], e["probabilities"])) > 1e-5:
                        raise AssertionError(f"sentence {i}: got {p}, predict gave {e}")
                with lock:
                    answered[0] += 1
                    rows[0] += len(picks)
        except Exception as ex:  # noqa: BLE001 - every failure is reported
            with lock:
                errors.append(f"client {seed}: {ex}")

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(s,)) for s in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    if errors:
        print("\n".join(errors[:5]), file=sys.stderr)
        sys.exit(1)
    if a.bench:
        print(f"server, {a.clients:2d} concurrent clients, one sentence per request: {answered[0] / wall:7.1f} requests/s "
              f"({answered[0]} requests in {wall:.1f} s, all answered correctly)")
        return
    print(f"{a.clients} clients x {a.requests} requests: {answered[0]} answered correctly ({rows[0]} sentences), "
          f"every malformed one refused; {wall:.1f} s, {answered[0] / wall:.0f} requests/s")


if __name__ == "__main__":
    main()
