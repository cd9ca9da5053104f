#!/usr/bin/env python3
"""Loopback fake of the Hugging Face Hub download protocol, for testing EX2's hub client against
something that behaves like the real hub (and that the real `huggingface_hub` package accepts: see
hub_interop.py, which drives huggingface_hub==2.4.0's hf_hub_download / snapshot_download at it).
Standard library only.

    python3 fake_hub.py --root DIR --port-file FILE [--port 0] [--cdn-port 0] [--cdn-same-origin]
        [--log FILE] [--token TOKEN] [--drop-once PATH:BYTES ...] [--corrupt PATH ...]
        [--lfs-min-bytes 1024] [--verbose]

Binds 127.0.0.1 only, HTTP/1.1 with keep-alive (every response carries Content-Length). Two
listeners share one state: the hub (--port) and a "CDN" (--cdn-port) that LFS redirects point to.
Once both listen, the hub port is written (decimal, newline) to --port-file, atomically (temp file
renamed into place). SIGTERM / SIGINT: both listeners stop, the log is closed, exit 0.

Repos (re-read on every request, so a test may change files between requests; hashes are cached
by (path, size, mtime)):
  DIR/ORG/NAME/                    a model repo "ORG/NAME"; its top-level tree is branch "main":
                                   every regular file under it except .hub.json and revisions/
  DIR/ORG/NAME/revisions/BRANCH/   the full tree of another branch; BRANCH is URL-unquoted, so
                                   revisions/refs%2Fpr%2F1/ is branch "refs/pr/1"
  DIR/ORG/NAME/.hub.json           optional {"gated": true|false|"auto"|"manual", "private": bool,
                                   "tags": {"v1": "main"}}   (a tag names a branch or a commit)
  commit id of a branch = sha1 over its sorted "path\\0blob-oid\\n" lines: same content, same commit.
  A revision in a URL is a branch, a tag or a 40-hex commit of any branch; it is URL-unquoted
  (refs%2Fpr%2F1), and an unquoted one with slashes (refs/pr/1) is matched too.
  LFS files: size >= --lfs-min-bytes, or a name ending in .safetensors .bin .gguf .gz .pt .pth
  .ckpt .onnx .msgpack .h5 .npz .zip .tar; their git blob is the LFS pointer text.

Endpoints (hub listener; the CDN listener serves /lfs-blobs/ only, never checks auth)
  GET /api/models/ORG/NAME[/revision/REV][?blobs=true]   model info: {"_id", "id", "modelId",
        "author", "sha", "private", "gated", "disabled", "lastModified", "createdAt", "tags",
        "siblings": [{"rfilename"} (+ "blobId", "size", "lfs" with blobs=true)], "downloads",
        "likes", "library_name"}
  GET /api/models/ORG/NAME/tree/REV[/PATH][?recursive=true&expand=true]   [{"type": "file"|
        "directory", "oid", "size", "path", "lfs": {"oid": sha256, "size", "pointerSize"}}]
        (one page, sorted by path; expand adds "lastCommit")
  GET /api/models/ORG/NAME/refs[?include_prs=1]   {"branches", "tags", "converts"[, "pullRequests"]}
  HEAD|GET /ORG/NAME/resolve/REV/PATH
        regular file: 200, ETag "<git blob sha1>", X-Repo-Commit, Content-Length, Accept-Ranges,
                      body on GET; Range honoured (206 + Content-Range, 416 if unsatisfiable)
        LFS file:     302, Location http://127.0.0.1:CDNPORT/lfs-blobs/<sha256> (absolute, like the
                      real CDN), X-Repo-Commit, X-Linked-Etag "<sha256>", X-Linked-Size, ETag
                      "<pointer's git blob sha1>", Content-Length 0
  HEAD|GET /lfs-blobs/SHA256   the bytes; ETag "<sha256>", Accept-Ranges: bytes, Range honoured
Why a second port for the CDN: huggingface_hub 2.4.0's metadata HEAD follows every redirect whose
target has the same origin (scheme, host, port) and reads X-Repo-Commit / X-Linked-* from the
final response; a blob on the hub's own port would be HEADed too and, lacking X-Repo-Commit,
fail. The real CDN is another origin, so the client stops at the 302 (and drops Authorization).
--cdn-same-origin points Location at the hub port instead (to test a client's same-host handling).

Errors (body {"error": MESSAGE}, headers X-Error-Code and X-Error-Message), in the real hub's order:
  unknown or private repo        401 RepoNotFound without a valid token, 404 RepoNotFound with one
  gated repo, no valid token     401 GatedRepo  "Access to model ORG/NAME is restricted. You must
                                 have access to it and be authenticated to access it. Please log in."
  unknown revision               404 RevisionNotFound  "Invalid rev id: REV"
  unknown file / tree path       404 EntryNotFound     "Entry not found" (with X-Repo-Commit)
  unknown blob / other route     404, no X-Error-Code
  A valid token is "Authorization: Bearer TOKEN" with TOKEN == --token (none is valid without it).

Faults
  --drop-once PATH:BYTES  the first GET of that repo-relative path's bytes (the LFS blob, or the
                          direct resolve GET) starting at offset 0, in any repo, sends the full
                          headers and only BYTES body bytes, then shuts the socket down. Once.
  --corrupt PATH          that path's bytes are served with the middle byte XOR 0xFF (every time,
                          on the blob and on a direct resolve GET); ETags still advertise the
                          hashes of the true content.

--log FILE appends one JSON line per request, flushed: {"ts", "server": "hub"|"cdn", "method",
"path" (raw, with query), "range" (the header or null), "auth" (an Authorization header was sent),
"auth_valid", "status", "body_bytes" (body bytes actually written), "dropped" (a fault cut it)}.
"""

import argparse
import hashlib
import json
import mimetypes
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".gz", ".pt", ".pth", ".ckpt", ".onnx",
                ".msgpack", ".h5", ".npz", ".zip", ".tar")
FIXED_DATE = "2024-01-01T00:00:00.000Z"
CHUNK = 64 * 1024
HEX = set("0123456789abcdef")


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256, size):
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (sha256, size)).encode()


def is_commit_id(s):
    return len(s) == 40 and set(s) <= HEX


class FileEntry:
    """One file of one branch."""

    def __init__(self, path, abspath, size, sha1_git, sha256, lfs):
        self.path = path          # repo-relative, "/"-separated
        self.abspath = abspath
        self.size = size
        self.sha256 = sha256      # of the content
        self.lfs = lfs
        if lfs:
            pointer = lfs_pointer(sha256, size)
            self.pointer_size = len(pointer)
            self.oid = git_blob_sha1(pointer)   # the git blob is the pointer
        else:
            self.pointer_size = None
            self.oid = sha1_git


class Branch:
    def __init__(self, name, files):
        self.name = name
        self.files = files        # path -> FileEntry
        h = hashlib.sha1()
        for p in sorted(files):
            h.update(p.encode() + b"\0" + files[p].oid.encode() + b"\n")
        self.commit = h.hexdigest()

    def dirs(self):
        out = set()
        for p in self.files:
            parts = p.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                out.add("/".join(parts[:i]))
        return out

    def tree_oid(self, d):
        h = hashlib.sha1(b"tree\0" + d.encode() + b"\0")
        for p in sorted(self.files):
            if p.startswith(d + "/"):
                h.update(p.encode() + b"\0" + self.files[p].oid.encode() + b"\n")
        return h.hexdigest()


class Repo:
    def __init__(self, repo_id, meta, branches):
        self.repo_id = repo_id
        self.meta = meta
        self.branches = branches  # name -> Branch
        tags = meta.get("tags") or {}
        self.tags = {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}

    @property
    def gated(self):
        g = self.meta.get("gated", False)
        if g is True:
            return "manual"
        if g in ("auto", "manual"):
            return g
        return False

    @property
    def private(self):
        return bool(self.meta.get("private", False))

    def resolve(self, rev):
        """A revision (branch, tag, commit id) -> Branch, or None."""
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            target = self.tags[rev]
            if target in self.branches:
                return self.branches[target]
            rev = target
        if is_commit_id(rev):
            for b in self.branches.values():
                if b.commit == rev:
                    return b
        return None

    def known_revisions(self):
        return set(self.branches) | set(self.tags)


class HubState:
    def __init__(self, args):
        self.root = os.path.abspath(args.root)
        self.token = args.token
        self.lfs_min = args.lfs_min_bytes
        self.corrupt = set(args.corrupt or [])
        self.drop_once = {}
        for spec in args.drop_once or []:
            path, sep, n = spec.rpartition(":")
            if not sep or not path or not n.isdigit():
                raise SystemExit("fake_hub: --drop-once wants PATH:BYTES, got %r" % spec)
            self.drop_once[path] = int(n)
        self.dropped = set()
        self.lock = threading.Lock()
        self.hash_cache = {}      # abspath -> ((size, mtime_ns), sha1_git, sha256)
        self.blobs = {}           # sha256 -> (abspath, size, set of repo paths)
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
        self.log_lock = threading.Lock()
        self.cdn_base = None      # set once the listeners are bound

    # --- repos -------------------------------------------------------------------------------

    def _hashes(self, abspath, st):
        key = (st.st_size, st.st_mtime_ns)
        with self.lock:
            hit = self.hash_cache.get(abspath)
        if hit and hit[0] == key:
            return hit[1], hit[2]
        h1 = hashlib.sha1(b"blob %d\0" % st.st_size)
        h256 = hashlib.sha256()
        with open(abspath, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h1.update(chunk)
                h256.update(chunk)
        sha1_git, sha256 = h1.hexdigest(), h256.hexdigest()
        with self.lock:
            self.hash_cache[abspath] = (key, sha1_git, sha256)
        return sha1_git, sha256

    def _is_lfs(self, path, size):
        return size >= self.lfs_min or path.lower().endswith(LFS_SUFFIXES)

    def _scan_tree(self, top, skip_top):
        files = {}
        for dirpath, dirnames, filenames in os.walk(top):
            rel_dir = os.path.relpath(dirpath, top)
            if rel_dir == ".":
                rel_dir = ""
                dirnames[:] = [d for d in dirnames if d not in skip_top]
            dirnames.sort()
            for fn in sorted(filenames):
                if rel_dir == "" and fn in skip_top:
                    continue
                abspath = os.path.join(dirpath, fn)
                try:
                    st = os.stat(abspath)
                except OSError:
                    continue
                if not os.path.isfile(abspath):
                    continue
                path = (rel_dir.replace(os.sep, "/") + "/" + fn) if rel_dir else fn
                sha1_git, sha256 = self._hashes(abspath, st)
                entry = FileEntry(path, abspath, st.st_size, sha1_git, sha256,
                                  self._is_lfs(path, st.st_size))
                files[path] = entry
                with self.lock:
                    rec = self.blobs.get(sha256)
                    if rec is None or rec[0] != abspath and not os.path.exists(rec[0]):
                        rec = (abspath, st.st_size, set())
                        self.blobs[sha256] = rec
                    rec[2].add(path)
        return files

    def repo(self, org, name):
        if not org or not name or org.startswith(".") or name.startswith(".") \
                or "/" in org or "/" in name or "\\" in org or "\\" in name:
            return None
        top = os.path.join(self.root, org, name)
        if not os.path.isdir(top):
            return None
        meta = {}
        meta_path = os.path.join(top, ".hub.json")
        if os.path.isfile(meta_path):
            try:
                with open(meta_path, encoding="utf-8") as f:
                    meta = json.load(f) or {}
            except (OSError, ValueError) as e:
                sys.stderr.write("fake_hub: ignoring bad %s: %s\n" % (meta_path, e))
        branches = {"main": Branch("main", self._scan_tree(top, {".hub.json", "revisions"}))}
        rev_dir = os.path.join(top, "revisions")
        if os.path.isdir(rev_dir):
            for d in sorted(os.listdir(rev_dir)):
                full = os.path.join(rev_dir, d)
                bname = unquote(d)
                if not os.path.isdir(full) or bname == "main":
                    continue
                branches[bname] = Branch(bname, self._scan_tree(full, set()))
        return Repo(org + "/" + name, meta, branches)

    def all_repos(self):
        try:
            orgs = sorted(os.listdir(self.root))
        except OSError:
            return
        for org in orgs:
            if org.startswith(".") or not os.path.isdir(os.path.join(self.root, org)):
                continue
            for name in sorted(os.listdir(os.path.join(self.root, org))):
                r = self.repo(org, name)
                if r is not None:
                    yield r

    def blob(self, sha256):
        """sha256 -> (abspath, size, repo paths), checking the file still has that content."""
        for attempt in range(2):
            with self.lock:
                rec = self.blobs.get(sha256)
            if rec is not None:
                try:
                    st = os.stat(rec[0])
                    if self._hashes(rec[0], st)[1] == sha256:
                        return rec[0], st.st_size, set(rec[2])
                except OSError:
                    pass
                with self.lock:
                    self.blobs.pop(sha256, None)
            if attempt == 0:
                for _ in self.all_repos():   # rescan everything, refreshing the index
                    pass
        return None

    def token_valid(self, header):
        if not header or not self.token:
            return False
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and value.strip() == self.token

    def take_drop(self, paths):
        """If one of these repo paths has an unfired --drop-once, fire it: -> byte count, else None."""
        with self.lock:
            for p in sorted(paths):
                if p in self.drop_once and p not in self.dropped:
                    self.dropped.add(p)
                    return self.drop_once[p]
        return None

    def log(self, record):
        if self.log_file is None:
            return
        line = json.dumps(record, sort_keys=True)
        with self.log_lock:
            try:
                self.log_file.write(line + "\n")
                self.log_file.flush()
            except ValueError:
                pass   # closed during shutdown


class HubError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def parse_range(header, size):
    """-> None (no/ignored Range), (start, end_inclusive), or "unsatisfiable"."""
    if not header:
        return None
    h = header.strip()
    if not h.lower().startswith("bytes="):
        return None
    spec = h[6:].strip()
    if "," in spec:
        return None   # multipart ranges: ignored, the whole body is sent (allowed by RFC 9110)
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not dash:
        return None
    try:
        if first == "":
            n = int(last)
            if n <= 0 or size == 0:
                return "unsatisfiable"
            return (max(size - n, 0), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return (start, min(end, size - 1))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1"
    sys_version = ""
    state = None        # set on the subclass per listener
    role = "hub"

    # --- plumbing ------------------------------------------------------------------------------

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake_hub[%s]: %s\n" % (self.role, fmt % args))

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def _begin(self):
        self._status = None
        self._body_bytes = 0
        self._dropped = False
        self._auth_header = self.headers.get("Authorization")
        self._auth_valid = self.state.token_valid(self._auth_header)

    def _finish_log(self):
        self.state.log({
            "ts": round(time.time(), 6), "server": self.role, "method": self.command,
            "path": self.path, "range": self.headers.get("Range"),
            "auth": self._auth_header is not None, "auth_valid": self._auth_valid,
            "status": self._status, "body_bytes": self._body_bytes, "dropped": self._dropped,
        })

    def _write(self, data):
        self.wfile.write(data)
        self._body_bytes += len(data)

    def _send_bytes(self, status, body, headers, content_type="application/json; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self._write(body)

    def _send_json(self, obj, headers=None):
        self._send_bytes(200, json.dumps(obj).encode(), headers or {})

    def _send_error(self, e):
        body = json.dumps({"error": e.message}).encode()
        headers = {"X-Error-Message": e.message}
        if e.code:
            headers["X-Error-Code"] = e.code
        headers.update(e.headers)
        self._send_bytes(e.status, body, headers)

    def _drain_body(self):
        n = self.headers.get("Content-Length")
        if n and n.isdigit() and int(n) > 0:
            self.rfile.read(int(n))

    def do_HEAD(self):
        self._dispatch()

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._drain_body()
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _dispatch(self):
        self._begin()
        try:
            try:
                self._route()
            except HubError as e:
                self._send_error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug here: answer 500 (if still possible) rather than hang the client
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            if self._status is None:
                try:
                    self._send_error(HubError(500, None, "fake_hub internal error"))
                except OSError:
                    pass
        finally:
            self._finish_log()

    # --- routing -------------------------------------------------------------------------------

    def _route(self):
        raw_path, _, query = self.path.partition("?")
        self.query = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        raw = [s for s in raw_path.split("/")]
        if raw and raw[0] == "":
            raw = raw[1:]
        seg = [unquote(s) for s in raw]
        if any(s in ("..", ".") for s in seg):
            raise HubError(400, "BadRequest", "Invalid path")
        read = self.command in ("GET", "HEAD")

        if len(seg) == 2 and seg[0] == "lfs-blobs" and read:
            return self._blob(seg[1])
        if self.role == "cdn":
            raise HubError(404, None, "Not found")

        if len(seg) >= 4 and seg[0] == "api" and seg[1] == "models" and read:
            org, name, rest_raw = seg[2], seg[3], raw[4:]
            if not rest_raw:
                return self._model_info(org, name, None)
            kind = unquote(rest_raw[0])
            if kind == "revision" and len(rest_raw) >= 2:
                return self._model_info(org, name, "/".join(unquote(s) for s in rest_raw[1:]))
            if kind == "tree" and len(rest_raw) >= 2:
                return self._tree(org, name, rest_raw[1:])
            if kind == "refs" and len(rest_raw) == 1:
                return self._refs(org, name)
            raise HubError(404, None, "Not found")
        if len(seg) >= 5 and seg[2] == "resolve" and read:
            return self._resolve(seg[0], seg[1], raw[3:])
        raise HubError(404, None, "Not found")

    # --- checks in the real hub's order -------------------------------------------------------

    def _repo_checked(self, org, name):
        repo = self.state.repo(org, name)
        if repo is None or (repo.private and not self._auth_valid):
            if self._auth_valid:
                raise HubError(404, "RepoNotFound", "Repository not found")
            raise HubError(401, "RepoNotFound", "Repository not found")
        if repo.gated and not self._auth_valid:
            raise HubError(401, "GatedRepo",
                           "Access to model %s is restricted. You must have access to it and be "
                           "authenticated to access it. Please log in." % repo.repo_id)
        return repo

    def _split_rev(self, repo, raw_rest, need_rest):
        """raw URL segments "REV/PATH..." -> (rev, branch, path_segments). The revision is the first
        segment unquoted (refs%2Fpr%2F1) or, failing that, the longest known slashy revision."""
        first = unquote(raw_rest[0])
        branch = repo.resolve(first)
        if branch is not None:
            return first, branch, [unquote(s) for s in raw_rest[1:]]
        segs = [unquote(s) for s in raw_rest]
        known = repo.known_revisions()
        for i in range(len(segs) - (1 if need_rest else 0), 1, -1):
            cand = "/".join(segs[:i])
            if cand in known:
                return cand, repo.resolve(cand), segs[i:]
        raise HubError(404, "RevisionNotFound", "Invalid rev id: %s" % first)

    # --- endpoints -----------------------------------------------------------------------------

    def _model_info(self, org, name, rev):
        repo = self._repo_checked(org, name)
        branch = repo.resolve(rev if rev is not None else "main")
        if branch is None:
            raise HubError(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        blobs = self.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for p in sorted(branch.files):
            f = branch.files[p]
            s = {"rfilename": p}
            if blobs:
                s["blobId"] = f.oid
                s["size"] = f.size
                if f.lfs:
                    s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
            siblings.append(s)
        self._send_json({
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id, "modelId": repo.repo_id, "author": org,
            "sha": branch.commit, "private": repo.private, "gated": repo.gated,
            "disabled": False, "lastModified": FIXED_DATE, "createdAt": FIXED_DATE,
            "tags": [], "siblings": siblings, "downloads": 0, "likes": 0, "library_name": None,
        })

    def _tree(self, org, name, raw_rest):
        repo = self._repo_checked(org, name)
        rev, branch, path_segs = self._split_rev(repo, raw_rest, need_rest=False)
        base = "/".join(s for s in path_segs if s != "")
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        expand = self.query.get("expand", "").lower() in ("1", "true")
        dirs = branch.dirs()
        if base and base not in dirs:
            raise HubError(404, "EntryNotFound", "Entry not found",
                           {"X-Repo-Commit": branch.commit})
        prefix = base + "/" if base else ""
        entries = []

        def wanted(p):
            if not p.startswith(prefix):
                return False
            return recursive or "/" not in p[len(prefix):]

        last_commit = {"id": branch.commit, "title": "Fake hub commit", "date": FIXED_DATE}
        for d in sorted(dirs):
            if wanted(d):
                e = {"type": "directory", "oid": branch.tree_oid(d), "size": 0, "path": d}
                if expand:
                    e["lastCommit"] = last_commit
                entries.append(e)
        for p in sorted(branch.files):
            if wanted(p):
                f = branch.files[p]
                e = {"type": "file", "oid": f.oid, "size": f.size, "path": p}
                if f.lfs:
                    e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
                if expand:
                    e["lastCommit"] = last_commit
                entries.append(e)
        entries.sort(key=lambda e: e["path"])
        self._send_json(entries)

    def _refs(self, org, name):
        repo = self._repo_checked(org, name)
        branches, prs = [], []
        for bname in sorted(repo.branches):
            b = repo.branches[bname]
            if bname.startswith("refs/pr/"):
                prs.append({"name": bname, "ref": bname, "targetCommit": b.commit})
            else:
                branches.append({"name": bname, "ref": "refs/heads/" + bname, "targetCommit": b.commit})
        tags = []
        for t in sorted(repo.tags):
            b = repo.resolve(t)
            if b is not None:
                tags.append({"name": t, "ref": "refs/tags/" + t, "targetCommit": b.commit})
        out = {"branches": branches, "converts": [], "tags": tags}
        if self.query.get("include_prs", "").lower() in ("1", "true"):
            out["pullRequests"] = prs
        self._send_json(out)

    def _resolve(self, org, name, raw_rest):
        repo = self._repo_checked(org, name)
        rev, branch, path_segs = self._split_rev(repo, raw_rest, need_rest=True)
        path = "/".join(path_segs)
        f = branch.files.get(path)
        if f is None:
            raise HubError(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": branch.commit})
        common = {"X-Repo-Commit": branch.commit}
        if f.lfs:
            base = self.state.cdn_base
            headers = dict(common)
            headers.update({
                "Location": "%s/lfs-blobs/%s" % (base, f.sha256),
                "X-Linked-Etag": '"%s"' % f.sha256,
                "X-Linked-Size": str(f.size),
                "ETag": '"%s"' % f.oid,
                "Vary": "Origin, Accept-Encoding",
            })
            return self._send_bytes(302, b"", headers, content_type="text/plain; charset=utf-8")
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype == "application/json":
            ctype += "; charset=utf-8"
        common["ETag"] = '"%s"' % f.oid
        common["Content-Disposition"] = "inline; filename*=UTF-8''%s; filename=\"%s\";" % (
            os.path.basename(path), os.path.basename(path))
        self._serve_file(f.abspath, f.size, {path}, common, ctype)

    def _blob(self, sha256):
        sha256 = sha256.lower()
        rec = self.state.blob(sha256) if len(sha256) == 64 and set(sha256) <= HEX else None
        if rec is None:
            raise HubError(404, None, "Blob not found")
        abspath, size, paths = rec
        self._serve_file(abspath, size, paths, {"ETag": '"%s"' % sha256}, "application/octet-stream")

    # --- byte serving with Range and faults -----------------------------------------------------

    def _serve_file(self, abspath, size, paths, headers, ctype):
        rng = parse_range(self.headers.get("Range"), size)
        if rng == "unsatisfiable":
            body = json.dumps({"error": "Range Not Satisfiable"}).encode()
            return self._send_bytes(416, body, dict(headers, **{"Content-Range": "bytes */%d" % size,
                                                                 "Accept-Ranges": "bytes"}))
        start, end = rng if rng else (0, size - 1)
        length = end - start + 1 if size > 0 else 0
        corrupt = bool(paths & self.state.corrupt)
        drop = None
        if self.command == "GET" and start == 0:
            drop = self.state.take_drop(paths)

        self.send_response(206 if rng else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        flip_at = size // 2 if corrupt else -1
        limit = length if drop is None else min(drop, length)
        with open(abspath, "rb") as fh:
            fh.seek(start)
            pos, remaining = start, limit
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    break   # file shrank under us: the client sees a short body
                if pos <= flip_at < pos + len(chunk):
                    b = bytearray(chunk)
                    b[flip_at - pos] ^= 0xFF
                    chunk = bytes(b)
                self._write(chunk)
                pos += len(chunk)
                remaining -= len(chunk)
        if drop is not None:
            self._dropped = True
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    verbose = False


def make_server(state, role, port, verbose):
    handler = type("Handler_" + role, (Handler,), {"state": state, "role": role})
    srv = Server(("127.0.0.1", port), handler)
    srv.verbose = verbose
    return srv


def write_port_file(path, port):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".port-")
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="Loopback fake of the Hugging Face Hub download protocol.")
    ap.add_argument("--root", required=True, help="folder of ORG/NAME repos")
    ap.add_argument("--port", type=int, default=0, help="hub port (0: any free one)")
    ap.add_argument("--cdn-port", type=int, default=0, help="CDN port for LFS blobs (0: any free one)")
    ap.add_argument("--cdn-same-origin", action="store_true",
                    help="LFS redirects point at the hub's own port instead of the CDN listener")
    ap.add_argument("--port-file", required=True, help="written with the hub port once listening")
    ap.add_argument("--log", help="append one JSON line per request")
    ap.add_argument("--token", help="the one valid Bearer token (gated/private repos need it)")
    ap.add_argument("--drop-once", nargs="+", action="extend", metavar="PATH:BYTES", default=[])
    ap.add_argument("--corrupt", nargs="+", action="extend", metavar="PATH", default=[])
    ap.add_argument("--lfs-min-bytes", type=int, default=1024)
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args()
    if not os.path.isdir(args.root):
        ap.error("--root %s is not a directory" % args.root)

    state = HubState(args)
    hub = make_server(state, "hub", args.port, args.verbose)
    hub_port = hub.server_address[1]
    if args.cdn_same_origin:
        cdn, cdn_port = None, hub_port
    else:
        cdn = make_server(state, "cdn", args.cdn_port, args.verbose)
        cdn_port = cdn.server_address[1]
    state.cdn_base = "http://127.0.0.1:%d" % cdn_port

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    servers = [s for s in (hub, cdn) if s is not None]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
               for s in servers]
    for t in threads:
        t.start()
    write_port_file(args.port_file, hub_port)
    sys.stderr.write("fake_hub: hub http://127.0.0.1:%d  cdn %s  root %s\n"
                     % (hub_port, state.cdn_base, state.root))
    sys.stderr.flush()
    while not stop.wait(0.5):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    if state.log_file is not None:
        with state.log_lock:
            state.log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
