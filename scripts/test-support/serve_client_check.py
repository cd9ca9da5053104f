#!/usr/bin/env python3
"""Checks an OpenAI-compatible server with the real `openai` Python client (and a few raw HTTP
requests where the client cannot send what is needed).

    /work/venv-openai/bin/python serve_client_check.py --base-url http://127.0.0.1:PORT/v1 \\
        --model NAME [--adapter-model NAME] [--api-key KEY] [--json-prompts N] [--timeout S]

Prints one line per check, "PASS name detail" / "FAIL name detail" (or "SKIP name why", not
counted), and ends with exactly "serve-client: N passed, M failed"; exits 1 if any check failed,
2 on bad arguments. Every request has a timeout (--timeout, default 120 s) and the client makes no
retries. max_tokens is at most 48 everywhere, so the whole run stays short on a 135M model on 2 CPU
cores (roughly 60 requests, about 2,000 generated tokens).

Checks (all against --model unless said otherwise):
  models_list            models.list() lists --model (and --adapter-model when given)
  chat_basic             non-empty assistant message, object "chat.completion", finish_reason in
                         {stop, length}, usage prompt>0, completion>0, total = prompt + completion
  chat_max_tokens        max_tokens=5 on a long-story prompt: completion_tokens <= 5 and
                         finish_reason "length" (or "stop" with fewer than 5 tokens)
  chat_stream            stream=True: first chunk's delta has role "assistant", deltas concatenate to a
                         non-empty text, the last chunk with choices has a finish_reason, the stream
                         ends; chat_stream_sse: the same request over raw HTTP, every event is a
                         "data: " line with a chat.completion.chunk, the last is "data: [DONE]"
  chat_n2                n=2 returns two non-empty choices with indices 0 and 1
  chat_seed              temperature 1.0, seed 1234 twice: the same text
  chat_stop_newline      stop=["\\n"] on a one-per-line list prompt: no newline in the text
  json_object_mode       response_format json_object on N varied prompts (EX2 judge prompts and
                         others; temperatures 0, 0.7, 1.0): json.loads works and gives an object
  json_schema_verdict    strict json_schema {increases_knowledge: enum Yes/No, explanation: string}:
                         validates (jsonschema) at temperature 0 and 0.8;
  json_schema_key_order  ... and the keys come out in the schema's order
  json_schema_list       {count: integer, items: array of strings, maxItems 3} validates
  json_schema_nested     {concept: string, details: {color: string, size: enum}} validates
  logprobs               logprobs=True, top_logprobs=5 at temperature 0: one entry per completion
                         token, logprob <= 0, 5 alternatives sorted by logprob descending, and the
                         chosen token is among them with the same logprob (greedy: at the top)
  adapter_model          (with --adapter-model) requests with that name succeed; whether greedy
                         outputs differ from the base on 3 prompts is reported, never a failure
  legacy_completions     completions.create(prompt=...): non-empty text, object "text_completion",
                         consistent usage
  error_unknown_model    404, openai.NotFoundError, OpenAI error body {"error": {"message", "type"...}}
  error_missing_messages 400, openai.BadRequestError
  error_bad_json         a body that is not JSON -> 400, openai.BadRequestError, OpenAI error body
  error_context_length   "hello " * 10000 -> 400, code "context_length_exceeded"
  error_max_tokens_bound max_tokens=1000000 -> 400
  error_wrong_key        (with --api-key) a wrong key -> 401, openai.AuthenticationError
  error_missing_key      (with --api-key) no Authorization header -> 401 (raw HTTP)
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import jsonschema
import openai

MAX_TOK = 48
SYSTEM = "You are a knowledgeable teacher. Answer the questions in JSON format."
SHOT_Q = ("You want to explain what a {c} is to your students. Does the following text snippet mention "
          "any specific details about {c} that increases your students' knowledge about {c}? Answer yes "
          "or no. Provide an explanation for your answer.\n\nText snippet: {s}")
SHOT_A = ('{\n"explanation": "It teaches the students about the color of a tench.",\n'
          '"increases_knowledge": "Yes"\n}')

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"increases_knowledge": {"type": "string", "enum": ["Yes", "No"]},
                   "explanation": {"type": "string"}},
    "required": ["increases_knowledge", "explanation"],
    "additionalProperties": False,
}
LIST_SCHEMA = {
    "type": "object",
    "properties": {"count": {"type": "integer"},
                   "items": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
    "required": ["count", "items"],
    "additionalProperties": False,
}
NESTED_SCHEMA = {
    "type": "object",
    "properties": {
        "concept": {"type": "string"},
        "details": {"type": "object",
                    "properties": {"color": {"type": "string"},
                                   "size": {"type": "string", "enum": ["small", "medium", "large"]}},
                    "required": ["color", "size"],
                    "additionalProperties": False},
    },
    "required": ["concept", "details"],
    "additionalProperties": False,
}


def judge_messages(concept, snippet):
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": SHOT_Q.format(c="tench", s="A photo of a tench, with dark green color.")},
            {"role": "assistant", "content": SHOT_A},
            {"role": "user", "content": SHOT_Q.format(c=concept, s=snippet)}]


def user(text):
    return [{"role": "user", "content": text}]


JUDGE_ITEMS = [
    ("beagle", "A beagle with long floppy ears and a tricolour coat."),
    ("Blue Jay", "Click to enlarge photo of Blue Jay"),
    ("Boeing 747-400", "a Boeing 747 with four engines"),
    ("king protea", "The king protea has a huge bowl-shaped flower head."),
    ("pug", "A photo of a pug."),
    ("2012 Audi A5 Coupe", "2012 Audi A5 Coupe stock photo, image, picture"),
    ("Siamese", "A Siamese cat with blue almond-shaped eyes."),
    ("golden retriever", "This high-resolution photo is available for download in several sizes"),
]
GENERIC_JSON = [
    "Return a JSON object with the keys \"name\" and \"color\" for a ripe banana.",
    "Describe a cat as a JSON object with keys \"legs\" (a number) and \"sound\".",
    "Give me a JSON object that maps three fruit names to their colours.",
    "Answer in JSON: is the sky blue? Use the key \"answer\".",
    "Write a JSON object describing a car with keys make, model and year.",
    "Output a JSON object with one key \"city\" whose value is the capital of France.",
    "Reply with a JSON object listing two animals under the key \"animals\".",
    "Make a JSON object for a book with a title and an author.",
    "Produce JSON with the key \"greeting\" and a friendly value.",
    "Return JSON describing the weather today with keys \"sky\" and \"temperature\".",
    "Give a JSON object with keys \"bird\" and \"habitat\" for a penguin.",
    "Describe a flower in JSON with keys \"name\" and \"petals\".",
    "Return a JSON object whose key \"sum\" is the sum of 2 and 3.",
    "Describe a photo of a beagle as a JSON object with the key \"description\".",
    "Write a JSON object with keys \"plane\" and \"engines\" for a Boeing 747.",
    "Give a JSON object with a key \"words\" holding a list of three short words.",
]


def varied_json_prompts(n):
    out = []
    i = 0
    while len(out) < n:
        if i % 3 == 2:
            c, s = JUDGE_ITEMS[(i // 3) % len(JUDGE_ITEMS)]
            out.append(("judge:" + c, judge_messages(c, s)))
        else:
            p = GENERIC_JSON[(i - i // 3) % len(GENERIC_JSON)]
            out.append(("generic", [{"role": "system", "content": "You answer in JSON."}] + user(p)))
        i += 1
    return out


class Runner:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.key = args.api_key or "sk-no-key-required"
        self.client = openai.OpenAI(base_url=args.base_url, api_key=self.key,
                                    timeout=args.timeout, max_retries=0)

    def report(self, status, name, detail=""):
        detail = " ".join(str(detail).split())
        if len(detail) > 400:
            detail = detail[:400] + "..."
        print(f"{status} {name} {detail}".rstrip(), flush=True)
        if status == "PASS":
            self.passed += 1
        elif status == "FAIL":
            self.failed += 1

    def run(self, name, fn):
        t0 = time.time()
        try:
            res = fn()
        except Exception as e:  # noqa: BLE001 - every failure becomes a FAIL line
            self.report("FAIL", name, f"{type(e).__name__}: {e} ({time.time() - t0:.1f}s)")
            return
        if res is None:
            return
        for ok, sub, detail in res if isinstance(res, list) else [res]:
            self.report("PASS" if ok else "FAIL", sub or name, f"{detail} ({time.time() - t0:.1f}s)")

    # ------------------------------------------------------------------ helpers
    def chat(self, messages, model=None, **kw):
        kw.setdefault("max_tokens", 32)
        return self.client.chat.completions.create(model=model or self.args.model, messages=messages, **kw)

    def raw(self, method, path, body=None, headers=None, auth=True):
        url = self.args.base_url.rstrip("/") + path
        h = {"Content-Type": "application/json"}
        if auth:
            h["Authorization"] = f"Bearer {self.key}"
        h.update(headers or {})
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.args.timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    @staticmethod
    def usage_ok(u):
        if u is None:
            return False, "no usage"
        ok = (u.prompt_tokens > 0 and u.completion_tokens > 0
              and u.total_tokens == u.prompt_tokens + u.completion_tokens)
        return ok, f"usage {u.prompt_tokens}+{u.completion_tokens}={u.total_tokens}"

    @staticmethod
    def error_body_ok(body):
        """The client's e.body is the inner "error" object."""
        return isinstance(body, dict) and isinstance(body.get("message"), str) and bool(body["message"])

    # ------------------------------------------------------------------ checks
    def c_models_list(self):
        ids = [m.id for m in self.client.models.list()]
        want = [self.args.model] + ([self.args.adapter_model] if self.args.adapter_model else [])
        missing = [w for w in want if w not in ids]
        return not missing, None, f"ids={ids}" + (f" missing={missing}" if missing else "")

    def c_chat_basic(self):
        r = self.chat(user("Describe a photo of a beagle."), max_tokens=32, temperature=0)
        ch = r.choices[0]
        text = ch.message.content or ""
        uok, ud = self.usage_ok(r.usage)
        ok = (r.object == "chat.completion" and bool(r.id) and ch.message.role == "assistant"
              and text.strip() != "" and ch.finish_reason in ("stop", "length") and uok)
        return ok, None, (f"object={r.object} model={r.model} role={ch.message.role} "
                          f"finish={ch.finish_reason} {ud} text={text!r}")

    def c_chat_max_tokens(self):
        r = self.chat(user("Write a long story about a dragon who lives in a castle."), max_tokens=5,
                      temperature=0)
        ch = r.choices[0]
        ct = r.usage.completion_tokens if r.usage else None
        ok = ct is not None and ct <= 5 and (ch.finish_reason == "length" or
                                             (ch.finish_reason == "stop" and ct < 5))
        return ok, None, f"finish={ch.finish_reason} completion_tokens={ct} text={ch.message.content!r}"

    def c_chat_stream(self):
        msgs = user("Describe a photo of a tiger lily.")
        stream = self.chat(msgs, max_tokens=16, temperature=0, stream=True)
        chunks = [c for c in stream]
        with_choices = [c for c in chunks if c.choices]
        if not with_choices:
            return [(False, "chat_stream", f"{len(chunks)} chunks, none with choices")]
        first, last = with_choices[0], with_choices[-1]
        text = "".join(c.choices[0].delta.content or "" for c in with_choices)
        ids = {c.id for c in chunks}
        ok = (first.choices[0].delta.role == "assistant" and text.strip() != ""
              and last.choices[0].finish_reason in ("stop", "length")
              and all(c.object == "chat.completion.chunk" for c in chunks))
        out = [(ok, "chat_stream",
                f"{len(chunks)} chunks, first role={first.choices[0].delta.role} "
                f"last finish={last.choices[0].finish_reason} ids={len(ids)} text={text!r}")]
        # the same request over raw HTTP: SSE framing and the [DONE] terminator
        body = {"model": self.args.model, "messages": msgs, "max_tokens": 16, "temperature": 0,
                "stream": True}
        st, hdr, raw = self.raw("POST", "/chat/completions", body)
        lines = [ln for ln in raw.decode("utf-8", "replace").split("\n") if ln.strip()]
        data = [ln for ln in lines if ln.startswith("data:")]
        bad = [ln for ln in data[:-1] if not _is_chunk(ln[5:].strip())]
        ctype = {k.lower(): v for k, v in hdr.items()}.get("content-type", "")
        ok2 = (st == 200 and "text/event-stream" in ctype and len(data) >= 2
               and data[-1].strip() == "data: [DONE]" and not bad)
        out.append((ok2, "chat_stream_sse",
                    f"status={st} content-type={ctype!r} {len(data)} data lines, last={data[-1] if data else None!r}"
                    + (f" bad={bad[:2]}" if bad else "")))
        return out

    def c_chat_n2(self):
        r = self.chat(user("Name a colour."), n=2, max_tokens=12, temperature=0.9, seed=7)
        texts = [c.message.content or "" for c in r.choices]
        ok = (len(r.choices) == 2 and sorted(c.index for c in r.choices) == [0, 1]
              and all(t.strip() for t in texts))
        return ok, None, f"{len(r.choices)} choices, differ={len(set(texts)) > 1} texts={texts}"

    def c_chat_seed(self):
        msgs = user("Write one sentence about the sea.")
        a = self.chat(msgs, temperature=1.0, seed=1234, max_tokens=24).choices[0].message.content
        b = self.chat(msgs, temperature=1.0, seed=1234, max_tokens=24).choices[0].message.content
        c = self.chat(msgs, temperature=1.0, seed=4321, max_tokens=24).choices[0].message.content
        return (a == b and bool(a)), None, (f"same seed same text={a == b}, other seed differs={c != a} "
                                            f"text={a!r}")

    def c_chat_stop_newline(self):
        msgs = user("List five colours, one per line, without numbers.")
        free = self.chat(msgs, temperature=0, max_tokens=40).choices[0].message.content or ""
        r = self.chat(msgs, temperature=0, max_tokens=40, stop=["\n"])
        t = r.choices[0].message.content or ""
        exercised = "\n" in free
        prefix = free.split("\n")[0]
        ok = "\n" not in t and r.choices[0].finish_reason in ("stop", "length")
        return ok, None, (f"finish={r.choices[0].finish_reason} text={t!r} "
                          f"unstopped has newline={exercised} equals prefix={t == prefix}")

    def c_json_object(self):
        n = self.args.json_prompts
        temps = (0.0, 0.7, 1.0)
        fails, lengths = [], 0
        for i, (kind, msgs) in enumerate(varied_json_prompts(n)):
            r = self.chat(msgs, temperature=temps[i % 3], seed=100 + i, max_tokens=MAX_TOK,
                          response_format={"type": "json_object"})
            t = r.choices[0].message.content or ""
            lengths += r.choices[0].finish_reason == "length"
            try:
                v = json.loads(t)
                if not isinstance(v, dict):
                    fails.append((i, kind, "not an object", t))
            except ValueError as e:
                fails.append((i, kind, f"json error {e} finish={r.choices[0].finish_reason}", t))
        detail = f"{n - len(fails)}/{n} parsed as objects, {lengths} hit max_tokens"
        if fails:
            detail += f"; first failure #{fails[0][0]} ({fails[0][1]}): {fails[0][2]}: {fails[0][3]!r}"
        return not fails, None, detail

    def schema_calls(self, name, schema, msgs):
        out = []
        for temp in (0.0, 0.8):
            r = self.chat(msgs, temperature=temp, seed=11, max_tokens=MAX_TOK,
                          response_format={"type": "json_schema",
                                           "json_schema": {"name": name, "schema": schema, "strict": True}})
            out.append((temp, r.choices[0].message.content or "", r.choices[0].finish_reason))
        return out

    def validate(self, schema, calls):
        errs, objs = [], []
        for temp, t, fin in calls:
            try:
                v = json.loads(t)
                jsonschema.validate(v, schema)
                objs.append(v)
            except (ValueError, jsonschema.ValidationError) as e:
                msg = e.message if isinstance(e, jsonschema.ValidationError) else str(e)
                errs.append(f"t={temp} finish={fin}: {msg}: {t!r}")
        return errs, objs

    def c_json_schema_verdict(self):
        calls = self.schema_calls("verdict", VERDICT_SCHEMA,
                                  judge_messages("beagle", "A beagle with long floppy ears."))
        errs, objs = self.validate(VERDICT_SCHEMA, calls)
        order_ok = bool(objs) and all(list(o) == ["increases_knowledge", "explanation"] for o in objs)
        return [(not errs, "json_schema_verdict",
                 f"{len(calls) - len(errs)}/{len(calls)} valid" + (f"; {errs[0]}" if errs else
                                                                   f"; {calls[0][1]!r}")),
                (order_ok or self.args.any_key_order, "json_schema_key_order",
                 f"key orders {[list(o) for o in objs]}" + ("" if order_ok else " (accepted: --any-key-order)"))]

    def c_json_schema_list(self):
        calls = self.schema_calls("colours", LIST_SCHEMA,
                                  user("How many colours does a tench have? Give the count and up to "
                                       "three one-word colour names."))
        errs, _ = self.validate(LIST_SCHEMA, calls)
        return not errs, None, f"{len(calls) - len(errs)}/{len(calls)} valid" + (
            f"; {errs[0]}" if errs else f"; {calls[0][1]!r}")

    def c_json_schema_nested(self):
        calls = self.schema_calls("concept", NESTED_SCHEMA,
                                  user("Describe a pug: its colour and whether it is small, medium or large."))
        errs, _ = self.validate(NESTED_SCHEMA, calls)
        return not errs, None, f"{len(calls) - len(errs)}/{len(calls)} valid" + (
            f"; {errs[0]}" if errs else f"; {calls[0][1]!r}")

    def c_logprobs(self):
        r = self.chat(user("Describe a photo of a beagle."), temperature=0, max_tokens=8, logprobs=True,
                      top_logprobs=5)
        ch = r.choices[0]
        if ch.logprobs is None or not ch.logprobs.content:
            return False, None, "no choices[0].logprobs.content"
        ents = ch.logprobs.content
        probs = []
        for k, e in enumerate(ents):
            tops = e.top_logprobs or []
            lps = [t.logprob for t in tops]
            if e.logprob > 1e-6:
                probs.append(f"#{k} logprob {e.logprob} > 0")
            if len(tops) != 5:
                probs.append(f"#{k} {len(tops)} top_logprobs")
            if any(lps[j] < lps[j + 1] - 1e-6 for j in range(len(lps) - 1)):
                probs.append(f"#{k} top_logprobs not sorted {lps}")
            match = [t for t in tops if t.token == e.token]
            if not match:
                probs.append(f"#{k} chosen {e.token!r} not in top {[t.token for t in tops]}")
            elif abs(match[0].logprob - e.logprob) > 1e-3:
                probs.append(f"#{k} chosen logprob {e.logprob} vs top entry {match[0].logprob}")
            elif lps and e.logprob < lps[0] - 1e-4:
                probs.append(f"#{k} greedy token {e.token!r} is not the most likely ({e.logprob} < {lps[0]})")
        ct = r.usage.completion_tokens if r.usage else None
        if ct is not None and ct != len(ents):
            probs.append(f"{len(ents)} entries for {ct} completion tokens")
        joined = "".join(e.token for e in ents)
        return not probs, None, (f"{len(ents)} tokens, tokens join to content={joined == ch.message.content}, "
                                 f"first={ents[0].token!r} {ents[0].logprob:.3f} "
                                 f"top={[(t.token, round(t.logprob, 3)) for t in ents[0].top_logprobs or []]}"
                                 + (f"; problems: {probs[:3]}" if probs else ""))

    def c_adapter(self):
        prompts = ["Describe a photo of a beagle.", "Describe a photo of a tiger lily.",
                   "Describe a photo of a Boeing 747."]
        same = 0
        texts = []
        for p in prompts:
            a = self.chat(user(p), model=self.args.model, temperature=0, max_tokens=24)
            b = self.chat(user(p), model=self.args.adapter_model, temperature=0, max_tokens=24)
            ta, tb = a.choices[0].message.content or "", b.choices[0].message.content or ""
            if not tb.strip():
                return False, None, f"empty text from {self.args.adapter_model} on {p!r}"
            same += ta == tb
            texts.append((ta, tb))
        note = ("differs from the base on %d of %d greedy prompts" % (len(prompts) - same, len(prompts))
                if same < len(prompts) else
                "identical to the base on all %d greedy prompts (reported, not a failure)" % len(prompts))
        return True, None, f"model={b.model}: {note}; first base={texts[0][0]!r} adapter={texts[0][1]!r}"

    def c_legacy(self):
        r = self.client.completions.create(model=self.args.model, prompt="Describe a photo of a beagle.\n\n",
                                           max_tokens=16, temperature=0)
        ch = r.choices[0]
        uok, ud = self.usage_ok(r.usage)
        ok = (r.object == "text_completion" and (ch.text or "").strip() != ""
              and ch.finish_reason in ("stop", "length") and uok)
        return ok, None, f"object={r.object} finish={ch.finish_reason} {ud} text={ch.text!r}"

    def expect_error(self, fn, cls, status, code=None):
        try:
            r = fn()
        except cls as e:
            try:
                outer = json.loads(e.response.text)
            except ValueError:
                outer = None
            ok = (e.status_code == status and isinstance(outer, dict)
                  and self.error_body_ok(outer.get("error")))
            if code is not None:
                ok = ok and e.code == code
            return ok, None, (f"{type(e).__name__} status={e.status_code} code={e.code} "
                              f"type={getattr(e, 'type', None)} message={_msg(e.body)!r}")
        except openai.APIStatusError as e:
            return False, None, f"{type(e).__name__} status={e.status_code} code={e.code} body={e.body}"
        return False, None, f"no error; got {str(r)[:200]}"

    def c_err_unknown_model(self):
        return self.expect_error(lambda: self.chat(user("hi"), model="no-such-model-ex2", max_tokens=4),
                                 openai.NotFoundError, 404)

    def c_err_missing_messages(self):
        return self.expect_error(
            lambda: self.client.post("/chat/completions", cast_to=object,
                                     body={"model": self.args.model, "max_tokens": 4}),
            openai.BadRequestError, 400)

    def c_err_bad_json(self):
        return self.expect_error(
            lambda: self.client.post("/chat/completions", cast_to=object,
                                     content=b'{"model": "x", "messages": [',
                                     options={"headers": {"Content-Type": "application/json"}}),
            openai.BadRequestError, 400)

    def c_err_context(self):
        return self.expect_error(lambda: self.chat(user("hello " * 10000), max_tokens=4),
                                 openai.BadRequestError, 400, code="context_length_exceeded")

    def c_err_max_tokens(self):
        return self.expect_error(lambda: self.chat(user("hi"), max_tokens=1_000_000),
                                 openai.BadRequestError, 400)

    def c_err_wrong_key(self):
        bad = openai.OpenAI(base_url=self.args.base_url, api_key=self.key + "-wrong",
                            timeout=self.args.timeout, max_retries=0)
        return self.expect_error(lambda: bad.chat.completions.create(model=self.args.model,
                                                                     messages=user("hi"), max_tokens=4),
                                 openai.AuthenticationError, 401)

    def c_err_missing_key(self):
        st, _, body = self.raw("POST", "/chat/completions",
                               {"model": self.args.model, "messages": user("hi"), "max_tokens": 4}, auth=False)
        st2, _, _ = self.raw("GET", "/models", auth=False)
        try:
            err = json.loads(body).get("error")
        except (ValueError, AttributeError):
            err = None
        ok = st == 401 and st2 == 401 and self.error_body_ok(err)
        return ok, None, f"chat status={st} models status={st2} body={body[:160]!r}"

    def main(self):
        t0 = time.time()
        print(f"serve-client: {self.args.base_url} model={self.args.model} "
              f"adapter={self.args.adapter_model} key={'yes' if self.args.api_key else 'no'}", flush=True)
        self.run("models_list", self.c_models_list)
        self.run("chat_basic", self.c_chat_basic)
        self.run("chat_max_tokens", self.c_chat_max_tokens)
        self.run("chat_stream", self.c_chat_stream)
        self.run("chat_n2", self.c_chat_n2)
        self.run("chat_seed", self.c_chat_seed)
        self.run("chat_stop_newline", self.c_chat_stop_newline)
        self.run("json_object_mode", self.c_json_object)
        self.run("json_schema_verdict", self.c_json_schema_verdict)
        self.run("json_schema_list", self.c_json_schema_list)
        self.run("json_schema_nested", self.c_json_schema_nested)
        self.run("logprobs", self.c_logprobs)
        if self.args.adapter_model:
            self.run("adapter_model", self.c_adapter)
        else:
            self.report("SKIP", "adapter_model", "no --adapter-model")
        self.run("legacy_completions", self.c_legacy)
        self.run("error_unknown_model", self.c_err_unknown_model)
        self.run("error_missing_messages", self.c_err_missing_messages)
        self.run("error_bad_json", self.c_err_bad_json)
        self.run("error_context_length", self.c_err_context)
        self.run("error_max_tokens_bound", self.c_err_max_tokens)
        if self.args.api_key:
            self.run("error_wrong_key", self.c_err_wrong_key)
            self.run("error_missing_key", self.c_err_missing_key)
        else:
            self.report("SKIP", "error_wrong_key", "no --api-key")
            self.report("SKIP", "error_missing_key", "no --api-key")
        print(f"serve-client: total {time.time() - t0:.1f}s", flush=True)
        print(f"serve-client: {self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


def _is_chunk(s):
    try:
        return json.loads(s).get("object") == "chat.completion.chunk"
    except (ValueError, AttributeError):
        return False


def _msg(body):
    return body.get("message") if isinstance(body, dict) else body


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check an OpenAI-compatible server with the openai client.")
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080/v1")
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapter-model")
    ap.add_argument("--any-key-order", action="store_true",
                    help="accept properties in any order under strict schemas (servers that validate but do not order keys)")
    ap.add_argument("--api-key")
    ap.add_argument("--json-prompts", type=int, default=24)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    args = ap.parse_args(argv)
    if args.json_prompts < 1:
        ap.error("--json-prompts must be >= 1")
    return Runner(args).main()


if __name__ == "__main__":
    sys.exit(main())
