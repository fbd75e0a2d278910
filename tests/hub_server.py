"""A Hugging Face Hub on 127.0.0.1 for tests: serves model folders in the Hub's HTTP layout.

What huggingface_hub asks of the Hub, and this answers:
- ``GET /api/models/{repo}[/revision/{rev}]``: the commit and its files (size; sha256 of LFS
  files, which are the weights here as on the Hub);
- ``HEAD|GET /{repo}/resolve/{rev}/{file}``: ETag (git blob sha1, or ``X-Linked-Etag`` sha256
  for LFS files), ``X-Repo-Commit``, the size; GET honours ``Range: bytes=N-``.

Every request is counted (``requests``). ``bytes_per_s`` slows file bodies down, and
``hold_after`` stops a body after that many bytes until ``release`` is set, so a test can
cancel a download half-way at a known point; ``drop_after`` cuts the connection there once (a
lost connection).

    server = HubServer({"org/tiny-clip": folder}); server.start() ... server.stop()
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY_CLIP_REPO = "tiny-org/tiny-clip"  # the id under which the tests serve a tiny CLIP
LFS_SUFFIXES = (".safetensors", ".bin")
CHUNK = 64 * 1024


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    def __init__(self, repos: dict[str, Path]):
        self.repos = {repo: Path(folder) for repo, folder in repos.items()}
        self.requests: list[str] = []  # "METHOD path" of every request
        self.bytes_per_s: float | None = None
        self.hold_after: int | None = None  # stop a file body after this many bytes ...
        self.release = threading.Event()  # ... until this is set
        self.held = threading.Event()  # set when a body is being held
        self.drop_after: int | None = None  # cut the connection once after this many bytes
        self.body_bytes = 0  # file bytes sent, all requests
        self._bodies = 0  # file bodies being sent now
        self._quiet = threading.Condition()  # notified when a body ends
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._answer(self, body=False)

            def do_GET(self):
                hub._answer(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_until_quiet(self, timeout: float = 30) -> bool:
        """True once no file body is being sent. A cancelled download's body goes on after the
        release until the server meets the closed socket, and counts into ``body_bytes``."""
        with self._quiet:
            return self._quiet.wait_for(lambda: self._bodies == 0, timeout)

    def file_requests(self, name: str, method: str = "GET") -> list[str]:
        """The requests for one file, e.g. "GET /org/m/resolve/main/model.safetensors bytes=N-"."""
        return [r for r in self.requests if r.startswith(method) and f"/resolve/main/{name}" in r]

    # ------------------------------------------------------------------ answers
    def _files(self, repo: str) -> dict[str, Path]:
        folder = self.repos[repo]
        return {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        ranged = handler.headers.get("Range")
        self.requests.append(f"{handler.command} {handler.path}" + (f" {ranged}" if ranged else ""))
        path = handler.path.split("?")[0]
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if api and api.group(1) in self.repos:
            self._send_json(handler, self._model_info(api.group(1)), body)
        elif resolve and resolve.group(1) in self.repos:
            files = self._files(resolve.group(1))
            name = resolve.group(3)
            if name not in files:
                self._send_error(handler, 404, "EntryNotFound", body)
            else:
                self._send_file(handler, files[name], body)
        else:
            self._send_error(handler, 404, "RepoNotFound", body)

    def _model_info(self, repo: str) -> dict:
        siblings = []
        for name, path in self._files(repo).items():
            data = path.read_bytes()
            entry = {"rfilename": name, "size": len(data), "blobId": _git_sha1(data)}
            if name.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"sha256": _sha256(data), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        return {"id": repo, "modelId": repo, "sha": COMMIT, "private": False,
                "siblings": siblings}  # fmt: skip

    def _send_json(self, handler, payload: dict, body: bool) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def _send_error(self, handler, status: int, code: str, body: bool) -> None:
        data = json.dumps({"error": code}).encode()
        handler.send_response(status)
        handler.send_header("X-Error-Code", code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def _send_file(self, handler, path: Path, body: bool) -> None:
        data = path.read_bytes()
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range", ""))
        if ranged and body:
            start = int(ranged.group(1))
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", COMMIT)
        if path.name.endswith(LFS_SUFFIXES):
            handler.send_header("X-Linked-Etag", f'"{_sha256(data)}"')
            handler.send_header("X-Linked-Size", str(len(data)))
            handler.send_header("ETag", f'"{_git_sha1(data)}"')
        else:
            handler.send_header("ETag", f'"{_git_sha1(data)}"')
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.send_header("Content-Length", str(len(data) - start))
        handler.send_header("Accept-Ranges", "bytes")
        handler.end_headers()
        if not body:
            return
        with self._quiet:
            self._bodies += 1
        sent = start
        try:
            while sent < len(data):
                if self.hold_after is not None and sent >= self.hold_after:
                    self.held.set()
                    self.release.wait()
                if self.drop_after is not None and sent >= self.drop_after:
                    self.drop_after = None  # a lost connection, once
                    handler.close_connection = True
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    return
                chunk = data[sent : sent + CHUNK]
                for limit in (self.hold_after, self.drop_after):
                    if limit is not None and sent < limit:
                        chunk = chunk[: limit - sent]
                handler.wfile.write(chunk)
                handler.wfile.flush()
                sent += len(chunk)
                self.body_bytes += len(chunk)
                if self.bytes_per_s:
                    time.sleep(len(chunk) / self.bytes_per_s)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (a cancel)
        finally:
            with self._quiet:
                self._bodies -= 1
                self._quiet.notify_all()


def main(argv: list[str] | None = None) -> None:
    """Serve a tiny CLIP until killed, for the real-Blender test (.ci/ui_models.sh): writes the
    endpoint to --endpoint-file once listening and prints each request."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--repo", default=TINY_CLIP_REPO)
    parser.add_argument("--folder", type=Path, required=True, help="made here when missing")
    parser.add_argument("--bytes-per-s", type=float, default=None)
    parser.add_argument("--endpoint-file", type=Path, required=True)
    args = parser.parse_args(argv)
    if not (args.folder / "config.json").is_file():
        root = Path(__file__).resolve().parents[1]
        sys.path[:0] = [str(root), str(root / "tests")]
        import load_repo

        load_repo.load()
        from fixtures_teachers import save_tiny_clip

        save_tiny_clip(args.folder)
    server = HubServer({args.repo: args.folder})
    server.bytes_per_s = args.bytes_per_s
    server.start()
    args.endpoint_file.write_text(server.endpoint)
    print(f"serving {args.repo} at {server.endpoint}", flush=True)
    seen = 0
    while True:  # killed by the test when it ends
        time.sleep(0.2)
        for line in server.requests[seen:]:
            print(line, flush=True)
        seen = len(server.requests)


if __name__ == "__main__":
    main()
