#!/usr/bin/env python3
"""Fault-injecting loopback stub of the OpenAI chat-completions endpoint, for testing EX2's judge
client (the reference inspection.py asks gpt-3.5-turbo-1106 whether each description of a concept
"increases your students' knowledge" about it). Standard library only.

    python3 openai_stub.py --port 0 --port-file F --log FILE --faults SPEC [--seed N] [--delay-s X]
        [--answer-rule keywords|hash] [--timeout-sleep-s S] [--max-consecutive-faults K]
        [--require-key KEY] [--retry-after-s R]

    python3 openai_stub.py --predict CONCEPT SNIPPET [--predict-attempts N] [--faults ...] [--seed ...]
        prints {"item", "verdict", "explanation", "faults": [attempt 1..N]} and exits (no server)

Binds 127.0.0.1 only. Once listening it writes the chosen port (decimal, newline) to --port-file
(atomically: a temp file renamed into place). SIGTERM / SIGINT: stops accepting, wakes sleeping
`timeout` handlers, closes the log, exits 0.

Endpoints
  POST /v1/chat/completions  (also /chat/completions)   the judge
  GET  /v1/models            (also /models)             {"object": "list", "data": [...]}
  GET  /v1/models/NAME                                  one model object
  anything else                                         404 with an OpenAI error body

Parsing an item (from the LAST message whose role is "user"; content may be a string or a list of
{"type": "text", "text": ...} parts, which are joined with ""):
  snippet = the text after the last "Text snippet:" , stripped of surrounding whitespace
            (if absent: the whole message, stripped)
  concept = the text matched by "explain what a CONCEPT is to your students" ("an" also accepted), else by
            "specific details about CONCEPT that increases", else "" (stripped)
  item key = sha256((concept + "\\x00" + snippet).encode("utf-8")).hexdigest()

Answer rules (--answer-rule):
  keywords (default). Lower-case the snippet; words = maximal runs of letters/digits.
    "No"  if any word starts with one of: click, image, stock, download, wallpaper, copyright,
          licen (licence/license/licensed), royalty, photographer, website, thumbnail, watermark
    "No"  if no word is left after removing the concept's own words (concept lower-cased, split the
          same way, so "Maltese_dog" -> maltese, dog) and these filler words:
          a an the this that these it its is are was here there of in on at to for with and or
          my our your photo photos photograph photographs picture pictures pic pics shot close up
          closeup view beautiful nice cute lovely pretty great good amazing stunning awesome
          gorgeous wonderful cool best really very some kind sort typical example
          (so "A photo of a tench.", "A beautiful photo of a beagle", "pug" -> "No")
    "Yes" otherwise ("A tench with dark green color." -> "Yes").
  hash. "Yes" iff the first byte of sha256(snippet.encode("utf-8")) is even
        (int(hexdigest[0:2], 16) % 2 == 0), else "No".

A normal answer is HTTP 200 with a full ChatCompletion object; message content is, exactly as the
few-shot example of the reference prompt is laid out,
    {\\n"explanation": "<text>",\\n"increases_knowledge": "Yes"\\n}
(values JSON-escaped). usage: prompt_tokens = sum over messages of ceil(len(content)/4) (at least 1
each), completion_tokens = ceil(len(content)/4), total_tokens = the sum. If the request's
max_tokens (or max_completion_tokens) is smaller than completion_tokens, the content is cut to
4*max_tokens characters, completion_tokens = max_tokens and finish_reason is "length" (as a real
model cut off mid-JSON); otherwise finish_reason is "stop". "model" echoes the request's model.
Request errors: body not JSON / not an object / "messages" missing, empty or not a list -> 400
(invalid_request_error). With --require-key KEY, any request without "Authorization: Bearer KEY"
-> 401 (code invalid_api_key); these do not count as attempts and draw no fault.

Faults (--faults "NAME:P,NAME:P,..."; "" or "none" = no faults; the P's must add up to <= 1):
  For each chat request that parses, attempt = 1 + the number of earlier parsed requests for the
  same item key (counted in this process). The fault of (item, attempt) is a pure function of
  (seed, item key, attempt, SPEC, K):
      u = int(sha256(f"{seed}:{item}:{attempt}".encode()).hexdigest()[:16], 16) / 2**64
      walk the SPEC's entries in the order given, adding up their P; the first entry whose running
      sum exceeds u is the fault; none -> "ok".
      If the K (--max-consecutive-faults, default 2) attempts just before this one were all faults,
      this attempt is "ok" regardless of u. So a client making at least K+1 tries per item always
      gets an answer.
  429        status 429, header Retry-After: R (--retry-after-s, default 1), OpenAI error body
             (type "requests", code "rate_limit_exceeded")
  500        status 500, error body (type "server_error")
  503        status 503, error body (type "server_error", "The engine is currently overloaded...")
  timeout    sleeps --timeout-sleep-s (default 30) seconds, then sends the normal 200 answer (if the
             client is still there; the attempt has been counted either way). A SIGTERM during the
             sleep closes the connection instead.
  malformed  200, a well-formed ChatCompletion whose message content is not JSON and has no verdict
             (odd attempt number: a prose sentence without "Yes"/"No"; even: the JSON object cut
             mid-string, '{\n"explanation": "The snippet menti')
  nokey      200, content is a valid JSON object {"explanation": "..."} without "increases_knowledge"
  truncated  200 headers with Content-Length = full body length, but only the first half of the
             body is sent; then the connection is closed
  drop       the connection is closed (orderly shutdown, FIN) without any response bytes
  Every response honours --delay-s (seconds slept before answering, default 0).
  Connections are HTTP/1.1 keep-alive except after truncated/drop/stream (closed). A request with
  "stream": true gets a minimal SSE stream instead (chunks: role, the whole content, finish_reason,
  then "data: [DONE]"; connection closed); truncated ignores stream. n, temperature, top_p,
  response_format and seed are accepted and ignored (one choice, same answer every time).

Log (--log FILE, appended, one JSON object per line, flushed per line), for every request:
  {"time": unix seconds, "method": ..., "path": ..., "status": int or null (drop),
   "item": key or null, "concept": str or null, "snippet": str or null, "attempt": int or null,
   "fault": "ok" | one of the fault names | "unauthorized" | "bad_request" | "not_found",
   "verdict": "Yes" | "No" | null (null unless the verdict went out in valid JSON: faults ok,
              timeout; a "length"-cut answer logs null), "model": requested model or null}
  The line is written (and flushed) once the outcome is decided, BEFORE --delay-s, the timeout sleep
  or any response byte: whenever a client has seen any reply, or its connection drop, the request is
  already in the log. "status" is the status sent or to be sent (200 for "timeout" and "truncated",
  null for "drop"); a client that gave up on a "timeout" does not change its line.
"""

import argparse
import hashlib
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULT_NAMES = ("429", "500", "503", "timeout", "malformed", "truncated", "drop", "nokey")

SPURIOUS_PREFIXES = ("click", "image", "stock", "download", "wallpaper", "copyright", "licen",
                     "royalty", "photographer", "website", "thumbnail", "watermark")

FILLER = set("""a an the this that these it its is are was here there of in on at to for with and or
my our your photo photos photograph photographs picture pictures pic pics shot close up closeup view
beautiful nice cute lovely pretty great good amazing stunning awesome gorgeous wonderful cool best
really very some kind sort typical example""".split())

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
CONCEPT_RES = (re.compile(r"explain what an? (.+?) is to your students", re.S),
               re.compile(r"specific details about (.+?) that increases", re.S))
SNIPPET_MARK = "Text snippet:"


# ---------------------------------------------------------------- pure logic (importable)

def parse_faults(spec):
    spec = (spec or "").strip()
    if spec == "" or spec.lower() == "none":
        return []
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, p = part.rpartition(":")
        if not sep or name not in FAULT_NAMES:
            raise ValueError(f"bad fault entry {part!r}; names: {', '.join(FAULT_NAMES)}")
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability out of [0,1] in {part!r}")
        out.append((name, p))
    if sum(p for _, p in out) > 1.0 + 1e-9:
        raise ValueError("fault probabilities add up to more than 1")
    return out


def message_text(content):
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def parse_item(user_text):
    """(concept, snippet) from the judge's user message."""
    i = user_text.rfind(SNIPPET_MARK)
    snippet = (user_text[i + len(SNIPPET_MARK):] if i >= 0 else user_text).strip()
    head = user_text[:i] if i >= 0 else user_text
    concept = ""
    for rx in CONCEPT_RES:
        m = rx.search(head)
        if m:
            concept = m.group(1).strip()
            break
    return concept, snippet


def item_key(concept, snippet):
    return hashlib.sha256((concept + "\x00" + snippet).encode("utf-8")).hexdigest()


def words(text):
    return WORD_RE.findall(text.lower())


def verdict_keywords(concept, snippet):
    """(verdict, explanation) by the documented keyword rule."""
    ws = words(snippet)
    name = concept or "concept"
    for w in ws:
        for p in SPURIOUS_PREFIXES:
            if w.startswith(p):
                return "No", (f"The snippet only talks about the picture itself (\"{w}\"), not about "
                              f"any specific detail of the {name}.")
    cw = set(words(concept))
    rest = [w for w in ws if w not in cw and w not in FILLER]
    if not rest:
        return "No", f"The snippet only says that the picture shows a {name}; it adds no detail."
    return "Yes", f"It teaches the students about the {name}: {' '.join(rest[:8])}."


def verdict_hash(concept, snippet):
    even = int(hashlib.sha256(snippet.encode("utf-8")).hexdigest()[:2], 16) % 2 == 0
    name = concept or "concept"
    if even:
        return "Yes", f"It mentions a specific detail about the {name}."
    return "No", f"It does not mention any specific detail about the {name}."


def draw(seed, key, attempt):
    h = hashlib.sha256(f"{seed}:{key}:{attempt}".encode("utf-8")).hexdigest()
    return int(h[:16], 16) / float(2 ** 64)


class FaultPlan:
    """fault(key, attempt) as documented; memoised, thread-safe."""

    def __init__(self, faults, seed, max_consecutive):
        self.faults, self.seed, self.k = faults, seed, max_consecutive
        self.memo = {}
        self.lock = threading.Lock()

    def raw(self, key, attempt):
        u = draw(self.seed, key, attempt)
        acc = 0.0
        for name, p in self.faults:
            acc += p
            if u < acc:
                return name
        return "ok"

    def fault(self, key, attempt):
        with self.lock:
            return self._fault(key, attempt)

    def _fault(self, key, attempt):
        # iterative, so long attempt chains do not recurse
        for a in range(1, attempt + 1):
            if (key, a) in self.memo:
                continue
            f = self.raw(key, a)
            if f != "ok" and a > self.k:
                if all(self.memo[(key, b)] != "ok" for b in range(a - self.k, a)):
                    f = "ok"
            self.memo[(key, a)] = f
        return self.memo[(key, attempt)]


def est_tokens(text):
    return max(1, math.ceil(len(text) / 4))


def answer_content(explanation, verdict):
    return ("{\n\"explanation\": " + json.dumps(explanation, ensure_ascii=False) +
            ",\n\"increases_knowledge\": " + json.dumps(verdict) + "\n}")


# ---------------------------------------------------------------- server

class Stub:
    def __init__(self, args):
        self.args = args
        self.faults = parse_faults(args.faults)
        self.plan = FaultPlan(self.faults, args.seed, args.max_consecutive_faults)
        self.rule = verdict_hash if args.answer_rule == "hash" else verdict_keywords
        self.attempts = {}
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.stopping = threading.Event()
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.counter = 0

    def next_attempt(self, key):
        with self.lock:
            n = self.attempts.get(key, 0) + 1
            self.attempts[key] = n
            self.counter += 1
            return n, self.counter

    def write_log(self, rec):
        if self.log is None:
            return
        line = json.dumps(rec, ensure_ascii=False)
        with self.log_lock:
            if self.log.closed:
                return
            self.log.write(line + "\n")
            self.log.flush()

    def close(self):
        with self.log_lock:
            if self.log is not None and not self.log.closed:
                self.log.close()


def error_body(message, etype, code=None, param=None):
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-stub/1"
    stub = None  # set in main

    def log_message(self, fmt, *args):  # keep stderr quiet
        pass

    # --------------------------------------------------------- plumbing
    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline()
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline()
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def delay(self):
        d = self.stub.args.delay_s
        if d > 0:
            self.stub.stopping.wait(d)

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def record(self, **kw):
        rec = {"time": round(time.time(), 6), "method": self.command, "path": self.path,
               "status": None, "item": None, "concept": None, "snippet": None, "attempt": None,
               "fault": None, "verdict": None, "model": None}
        rec.update(kw)
        self.stub.write_log(rec)

    def authorized(self):
        key = self.stub.args.require_key
        if key is None:
            return True
        return (self.headers.get("Authorization") or "").strip() == f"Bearer {key}"

    def unauthorized(self):
        self.send_json(401, error_body("Incorrect API key provided. You can find your API key at "
                                       "https://platform.openai.com/account/api-keys.",
                                       "invalid_request_error", "invalid_api_key"))

    # --------------------------------------------------------- routes
    def route(self):
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self):
        try:
            self._do_get()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _do_get(self):
        path = self.route()
        if not self.authorized():
            self.record(status=401, fault="unauthorized")
            self.delay()
            self.unauthorized()
            return
        if path in ("/v1/models", "/models"):
            self.record(status=200, fault="ok")
            self.delay()
            self.send_json(200, {"object": "list", "data": [
                {"id": "gpt-3.5-turbo-1106", "object": "model", "created": 1698959748,
                 "owned_by": "system"}]})
        elif path.startswith("/v1/models/") or path.startswith("/models/"):
            name = path.rsplit("/", 1)[1]
            self.record(status=200, fault="ok", model=name)
            self.delay()
            self.send_json(200, {"id": name, "object": "model", "created": 1698959748,
                                 "owned_by": "system"})
        else:
            self.record(status=404, fault="not_found")
            self.delay()
            self.send_json(404, error_body(f"Invalid URL (GET {self.path})", "invalid_request_error"))

    def do_POST(self):
        try:
            self._do_post()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _do_post(self):
        raw = self.read_body()
        path = self.route()
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self.record(status=404, fault="not_found")
            self.delay()
            self.send_json(404, error_body(f"Invalid URL (POST {self.path})", "invalid_request_error"))
            return
        if not self.authorized():
            self.record(status=401, fault="unauthorized")
            self.delay()
            self.unauthorized()
            return
        try:
            req = json.loads(raw.decode("utf-8"))
            if not isinstance(req, dict):
                raise ValueError("body is not a JSON object")
        except (ValueError, UnicodeDecodeError) as e:
            self.record(status=400, fault="bad_request")
            self.delay()
            self.send_json(400, error_body(f"We could not parse the JSON body of your request. ({e})",
                                           "invalid_request_error"))
            return
        model = req.get("model")
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs:
            self.record(status=400, fault="bad_request", model=model)
            self.delay()
            self.send_json(400, error_body("'messages' is a required property and must be a non-empty "
                                           "array", "invalid_request_error", param="messages"))
            return
        user = ""
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") == "user":
                user = message_text(m.get("content"))
                break
        concept, snippet = parse_item(user)
        key = item_key(concept, snippet)
        attempt, seq = self.stub.next_attempt(key)
        fault = self.stub.plan.fault(key, attempt)
        verdict, explanation = self.stub.rule(concept, snippet)
        base = dict(item=key, concept=concept, snippet=snippet, attempt=attempt, fault=fault,
                    model=model)

        if fault in ("drop", "429", "500", "503"):
            self.record(status=None if fault == "drop" else int(fault), **base)
            self.delay()
            if fault == "drop":
                self.drop()
            elif fault == "429":
                ra = self.stub.args.retry_after_s
                self.send_json(429, error_body(
                    f"Rate limit reached for {model} in organization org-stub on requests per min "
                    f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {ra}s.", "requests",
                    "rate_limit_exceeded"), headers={"Retry-After": str(ra)})
            elif fault == "500":
                self.send_json(500, error_body("The server had an error while processing your "
                                               "request. Sorry about that!", "server_error"))
            else:
                self.send_json(503, error_body("The engine is currently overloaded, please try again "
                                               "later.", "server_error"))
            return

        logged_verdict = verdict
        if fault == "malformed":
            if attempt % 2:
                content = (f"The snippet {'does' if verdict == 'Yes' else 'does not'} teach the "
                           f"students something about the {concept or 'concept'}.")
            else:
                content = "{\n\"explanation\": \"The snippet menti"
            logged_verdict = None
        elif fault == "nokey":
            content = "{\n\"explanation\": " + json.dumps(explanation, ensure_ascii=False) + "\n}"
            logged_verdict = None
        else:
            content = answer_content(explanation, verdict)
        if fault == "truncated":
            logged_verdict = None

        prompt_tokens = sum(est_tokens(message_text(m.get("content")) if isinstance(m, dict) else "")
                            for m in msgs)
        completion_tokens = est_tokens(content)
        finish = "stop"
        limit = req.get("max_completion_tokens", req.get("max_tokens"))
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < completion_tokens:
            content = content[:4 * limit]
            completion_tokens = limit
            finish = "length"
            logged_verdict = None
        completion = {
            "id": f"chatcmpl-stub{seq:06d}{key[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model if model is not None else "gpt-3.5-turbo-1106",
            "system_fingerprint": "fp_stub",
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": content},
                         "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

        self.record(status=200, verdict=logged_verdict, **base)
        if fault == "timeout":
            self.stub.stopping.wait(self.stub.args.timeout_sleep_s)
            if self.stub.stopping.is_set():
                self.drop()
                return
        self.delay()

        if req.get("stream") and fault != "truncated":
            self.send_stream(completion, content, finish)
            return
        body = json.dumps(completion, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault == "truncated":
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.drop()
            return
        self.wfile.write(body)
        self.wfile.flush()

    def send_stream(self, completion, content, finish):
        """Minimal SSE stream (role chunk, one content chunk, finish chunk, [DONE]); connection closed."""
        def chunk(delta, fr):
            return {"id": completion["id"], "object": "chat.completion.chunk",
                    "created": completion["created"], "model": completion["model"],
                    "system_fingerprint": "fp_stub",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fr}]}
        events = [chunk({"role": "assistant", "content": ""}, None), chunk({"content": content}, None),
                  chunk({}, finish)]
        payload = b"".join(b"data: " + json.dumps(e, ensure_ascii=False).encode("utf-8") + b"\n\n"
                           for e in events) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--faults", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--delay-s", type=float, default=0.0)
    ap.add_argument("--timeout-sleep-s", type=float, default=30.0)
    ap.add_argument("--max-consecutive-faults", type=int, default=2)
    ap.add_argument("--answer-rule", choices=("keywords", "hash"), default="keywords")
    ap.add_argument("--require-key")
    ap.add_argument("--retry-after-s", type=int, default=1)
    ap.add_argument("--predict", nargs=2, metavar=("CONCEPT", "SNIPPET"),
                    help="print (JSON) the item key, verdict and the faults of attempts 1..N under "
                         "--faults/--seed/--max-consecutive-faults, then exit; serves nothing")
    ap.add_argument("--predict-attempts", type=int, default=6, metavar="N")
    args = ap.parse_args(argv)
    try:
        parse_faults(args.faults)
    except ValueError as e:
        ap.error(str(e))
    if args.max_consecutive_faults < 0:
        ap.error("--max-consecutive-faults must be >= 0")
    if args.predict:
        concept, snippet = (x.strip() for x in args.predict)
        key = item_key(concept, snippet)
        plan = FaultPlan(parse_faults(args.faults), args.seed, args.max_consecutive_faults)
        rule = verdict_hash if args.answer_rule == "hash" else verdict_keywords
        verdict, explanation = rule(concept, snippet)
        print(json.dumps({"item": key, "verdict": verdict, "explanation": explanation,
                          "faults": [plan.fault(key, a) for a in range(1, args.predict_attempts + 1)]}))
        return 0

    stub = Stub(args)
    Handler.stub = stub
    httpd = Server(("127.0.0.1", args.port), Handler)
    port = httpd.server_address[1]
    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"openai-stub: listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)

    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    while not done.wait(0.5):
        pass
    stub.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    stub.close()
    print("openai-stub: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
