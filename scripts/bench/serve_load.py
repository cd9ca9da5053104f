#!/usr/bin/env python3
"""A bounded loopback load on an OpenAI-compatible chat server: C concurrent clients, each sending
streaming chat requests one after another until R requests in all are done. Prints completion
tokens/s over the whole load, and p50/p99 of time to first token and of total time per request.

    python serve_load.py --base-url http://127.0.0.1:PORT/v1 --model NAME --clients 8 \\
        --requests 32 [--max-tokens 64] [--seed 0] [--label NAME] [--json OUT.json]

Every server gets the same request mix: prompt k (of a fixed list of EX2-style questions) with
temperature 0.7, top_p 0.95, seed k and max_tokens; completion tokens are the server's usage
counts (stream_options include_usage), else the number of content chunks. Uses only the standard
library (http.client over threads), so the same client drives ex2 serve and llama.cpp's server.
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse

PROMPTS = [
    "Describe a photo of a {}.", "What does a {} look like? Describe it in detail.",
    "Write a detailed description of a {} for a field guide.", "Tell me about the {}: its colours, shape and size.",
]
CONCEPTS = ["beagle", "tabby cat", "Boeing 737", "red-winged blackbird", "sunflower", "Tesla Model S", "pug", "barn owl"]


def request_body(k, model, max_tokens):
    text = PROMPTS[k % len(PROMPTS)].format(CONCEPTS[(k // len(PROMPTS)) % len(CONCEPTS)])
    return {"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0.7, "top_p": 0.95,
            "seed": k, "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}


def one_request(url, body, timeout):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("POST", url.path.rstrip("/") + "/chat/completions", json.dumps(body),
                 {"Content-Type": "application/json", "Authorization": "Bearer none"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    first, chunks, usage, finish, done = None, 0, None, None, False
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            done = True
            break
        ev = json.loads(data)
        if ev.get("usage"):
            usage = ev["usage"].get("completion_tokens")
        for ch in ev.get("choices") or []:
            finish = ch.get("finish_reason") or finish
            if (ch.get("delta") or {}).get("content"):
                chunks += 1
                if first is None:
                    first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    conn.close()
    if not done or finish is None:
        raise RuntimeError(f"the stream ended without a finish_reason and [DONE] after {chunks} chunks (cut off?)")
    return (first if first is not None else total), total, (usage if usage is not None else chunks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--label", default="server")
    ap.add_argument("--json")
    a = ap.parse_args()
    url = urllib.parse.urlparse(a.base_url)
    # Warm-up: one short request (model pages, first-call allocations).
    one_request(url, dict(request_body(0, a.model, 4)), a.timeout)
    nxt, lock, results, errors = [0], threading.Lock(), [], []

    def client():
        while True:
            with lock:
                k = nxt[0]
                if k >= a.requests:
                    return
                nxt[0] += 1
            try:
                results.append(one_request(url, request_body(k, a.model, a.max_tokens), a.timeout))
            except Exception as e:  # noqa: BLE001 - reported, and the run fails below
                errors.append(repr(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]

    ttft = [r[0] for r in results]
    total = [r[1] for r in results]
    tokens = sum(r[2] for r in results)
    out = {"label": a.label, "clients": a.clients, "requests": len(results), "completion_tokens": tokens,
           "wall_s": wall, "tokens_per_s": tokens / wall,
           "ttft_p50_s": statistics.median(ttft), "ttft_p99_s": pct(ttft, 0.99),
           "total_p50_s": statistics.median(total), "total_p99_s": pct(total, 0.99)}
    print(f"{a.label:>10} clients={a.clients:<3} requests={len(results):<4} tokens={tokens:<6} "
          f"tok/s={out['tokens_per_s']:7.1f}  ttft p50={out['ttft_p50_s']:.2f}s p99={out['ttft_p99_s']:.2f}s  "
          f"total p50={out['total_p50_s']:.2f}s p99={out['total_p99_s']:.2f}s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
