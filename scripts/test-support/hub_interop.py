#!/usr/bin/env python3
"""Drives the real `huggingface_hub` package (checked with 2.4.0) against a hub, for EX2's tests:
it proves that fake_hub.py serves what the real client accepts, and that a cache EX2 writes is one
huggingface_hub reads (offline) and scans without warnings. Needs huggingface_hub installed (run it
with a venv's python: `python -m venv V && V/bin/pip install huggingface_hub==2.4.0`).

    HF_ENDPOINT=http://127.0.0.1:PORT python hub_interop.py download REPO --cache DIR
        [--revision REV] [--allow PATTERN ...] [--ignore PATTERN ...]
        snapshot_download -> {"snapshot", "commit", "files": {relpath: sha256hex}, "huggingface_hub"}
    HF_ENDPOINT=... python hub_interop.py fetch REPO FILE --cache DIR [--revision REV]
        hf_hub_download (online) -> {"path", "sha256", "size", "huggingface_hub"}
    python hub_interop.py check REPO --cache DIR --files F1 F2 ... [--revision REV]
        strictly offline (HF_HUB_OFFLINE=1, local_files_only=True): hf_hub_download of each file,
        then snapshot_download -> {"snapshot", "files": {F: {"path", "sha256", "size", "blob",
        "symlink"}}, "huggingface_hub"}
    python hub_interop.py scan --cache DIR [--strict]
        scan_cache_dir -> {"repos": [...revisions, refs, files...], "warnings": [str],
        "incomplete_files": [...], "size_on_disk", "huggingface_hub"}; --strict: exit 1 on warnings

Auth: HF_TOKEN, if set, is passed as token=; if unset, token=False, so that a token saved on the
machine (~/.cache/huggingface/token) never leaks into a test. Progress bars are off unless
HF_HUB_DISABLE_PROGRESS_BARS is set by the caller.
Failure: exit 1, a message on stderr, and on stdout {"error": CLASS, "error_types": [CLASS and its
bases], "message", "status" (HTTP status or null), "huggingface_hub"}, so a test can check e.g. that
"GatedRepoError" or "EntryNotFoundError" is among error_types.
"""

import argparse
import hashlib
import json
import os
import sys


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot_files(snapshot):
    out = {}
    for dirpath, dirnames, filenames in os.walk(snapshot):
        dirnames.sort()
        for fn in sorted(filenames):
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, snapshot).replace(os.sep, "/")
            out[rel] = sha256_file(full)
    return out


def token_arg():
    return os.environ.get("HF_TOKEN") or False


def emit(obj):
    sys.stdout.write(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description="huggingface_hub interop checks for EX2's tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="snapshot_download (online)")
    d.add_argument("repo")
    d.add_argument("--cache", required=True)
    d.add_argument("--revision")
    d.add_argument("--allow", nargs="+", action="extend", default=None)
    d.add_argument("--ignore", nargs="+", action="extend", default=None)
    f = sub.add_parser("fetch", help="hf_hub_download of one file (online)")
    f.add_argument("repo")
    f.add_argument("file")
    f.add_argument("--cache", required=True)
    f.add_argument("--revision")
    c = sub.add_parser("check", help="offline hf_hub_download of files + snapshot_download")
    c.add_argument("repo")
    c.add_argument("--cache", required=True)
    c.add_argument("--files", nargs="+", required=True)
    c.add_argument("--revision")
    s = sub.add_parser("scan", help="scan_cache_dir summary")
    s.add_argument("--cache", required=True)
    s.add_argument("--strict", action="store_true", help="exit 1 if the scan has warnings")
    args = ap.parse_args()

    if args.cmd == "check":
        # Before the import: huggingface_hub reads HF_HUB_OFFLINE into its constants at import time.
        os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

    try:
        import huggingface_hub
    except ImportError as e:
        sys.stderr.write("hub_interop: huggingface_hub is not importable (%s); run with a venv that has it\n" % e)
        return 2
    version = huggingface_hub.__version__

    try:
        result = run(args, huggingface_hub)
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        status = getattr(getattr(e, "response", None), "status_code", None)
        emit({"error": type(e).__name__,
              "error_types": [t.__name__ for t in type(e).__mro__ if t is not object],
              "message": str(e), "status": status, "huggingface_hub": version})
        sys.stderr.write("hub_interop: %s failed: %s: %s\n" % (args.cmd, type(e).__name__, e))
        return 1
    result["huggingface_hub"] = version
    emit(result)
    if args.cmd == "scan" and args.strict and result["warnings"]:
        sys.stderr.write("hub_interop: scan found %d warning(s):\n  %s\n"
                         % (len(result["warnings"]), "\n  ".join(result["warnings"])))
        return 1
    return 0


def run(args, hh):
    if args.cmd == "download":
        snap = hh.snapshot_download(args.repo, revision=args.revision, cache_dir=args.cache,
                                    allow_patterns=args.allow, ignore_patterns=args.ignore,
                                    token=token_arg())
        return {"snapshot": snap, "commit": os.path.basename(snap), "files": snapshot_files(snap)}

    if args.cmd == "fetch":
        p = hh.hf_hub_download(args.repo, args.file, revision=args.revision, cache_dir=args.cache,
                               token=token_arg())
        return {"path": p, "sha256": sha256_file(p), "size": os.path.getsize(p)}

    if args.cmd == "check":
        files = {}
        for name in args.files:
            p = hh.hf_hub_download(args.repo, name, revision=args.revision, cache_dir=args.cache,
                                   local_files_only=True, token=False)
            files[name] = {"path": p, "sha256": sha256_file(p), "size": os.path.getsize(p),
                           "symlink": os.path.islink(p), "blob": os.path.realpath(p)}
        snap = hh.snapshot_download(args.repo, revision=args.revision, cache_dir=args.cache,
                                    local_files_only=True, token=False)
        for name, info in files.items():
            if os.path.dirname(os.path.abspath(info["path"])) != os.path.dirname(
                    os.path.abspath(os.path.join(snap, *name.split("/")))):
                raise RuntimeError("file %s resolved to %s, outside snapshot %s" % (name, info["path"], snap))
        return {"snapshot": snap, "commit": os.path.basename(snap), "files": files}

    if args.cmd == "scan":
        info = hh.scan_cache_dir(args.cache)
        repos = []
        for r in sorted(info.repos, key=lambda r: (r.repo_type, r.repo_id)):
            revisions = []
            for rev in sorted(r.revisions, key=lambda v: v.commit_hash):
                revisions.append({
                    "commit_hash": rev.commit_hash,
                    "refs": sorted(rev.refs),
                    "snapshot_path": str(rev.snapshot_path),
                    "size_on_disk": rev.size_on_disk,
                    "files": sorted(({"path": str(fi.file_path.relative_to(rev.snapshot_path)),
                                      "blob": str(fi.blob_path.relative_to(r.repo_path))
                                      if fi.blob_path.is_relative_to(r.repo_path) else str(fi.blob_path),
                                      "size_on_disk": fi.size_on_disk} for fi in rev.files),
                                    key=lambda x: x["path"]),
                })
            repos.append({
                "repo_id": r.repo_id, "repo_type": r.repo_type, "repo_path": str(r.repo_path),
                "size_on_disk": r.size_on_disk, "nb_files": r.nb_files,
                "refs": {ref: rev.commit_hash for ref, rev in sorted(r.refs.items())},
                "revisions": revisions,
            })
        incomplete = sorted(str(x.file_path) for x in getattr(info, "incomplete_files", ()) or ())
        return {"cache_dir": str(info.cache_dir), "size_on_disk": info.size_on_disk, "repos": repos,
                "warnings": [str(w) for w in info.warnings], "incomplete_files": incomplete}

    raise ValueError("unknown command %s" % args.cmd)


if __name__ == "__main__":
    sys.exit(main())
