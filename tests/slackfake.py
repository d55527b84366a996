"""A fake Slack Web API server on a free local port.

It answers the methods the bot uses, records every call (and every POST to
a response_url) so tests can assert on what a user would see, and can be
told to fail a method to exercise retries: with a Slack error (`fail`), or
with a transport fault (`fault`): HTTP 429 with Retry-After, a 5xx with an
HTML body, a reset connection before or after the message was taken, or a
timeout after it was taken (the outcome the sender cannot know). Posted
messages keep their metadata, and `conversations.history` returns them."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


class _Server(ThreadingHTTPServer):
    # slack_sdk opens a connection per call. The socketserver default of 5
    # waiting connections overflowed when 16 requests called the fake at
    # once (two serving processes): the kernel dropped the handshake and the
    # client tried again after its 1 s timeout, a 1 s p99 that slack.com
    # does not have.
    request_queue_size = 128


@dataclass
class Call:
    method: str  # "chat.postMessage", ..., or "response_url"
    body: dict[str, Any]
    path: str = ""
    at: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        """Everything a person would read in this message or view, joined."""
        return json.dumps(self.body, ensure_ascii=False)


@dataclass
class FakeSlack:
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    timeout_delay: float = 1.5  # how long a "timeout" fault holds the answer back
    post_delay: float = 0.0  # a slow Slack: every chat.postMessage takes this long to answer
    update_delay: float = 0.0  # every chat.update takes this long to answer
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _ts: int = 0

    def start(self) -> "FakeSlack":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw or "{}")
                else:
                    body = dict(parse_qsl(raw))
                    for k, v in list(body.items()):
                        if v[:1] in "[{":
                            try:
                                body[k] = json.loads(v)
                            except ValueError:
                                pass
                if self.path.startswith("/api/"):
                    method = self.path[len("/api/"):]
                elif self.path.startswith("/upload/"):  # the URL files.getUploadURLExternal hands out
                    method = "file_upload"
                    body = {"path": self.path, "bytes": raw}
                else:
                    method = "response_url"
                fault = fake._fault(method, body)
                if fault == "ratelimited":
                    return self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
                if fault == "server_error":
                    return self._send(503, b"<html><body>503 Service Unavailable</body></html>",
                                      content_type="text/html")
                if fault == "reset_before":
                    return self._reset()
                reply = fake._answer(method, body, self.path)
                if fault == "reset":
                    return self._reset()
                if fault == "timeout":
                    time.sleep(fake.timeout_delay)
                elif method == "chat.postMessage" and fake.post_delay:
                    time.sleep(fake.post_delay)
                elif method == "chat.update" and fake.update_delay:
                    time.sleep(fake.update_delay)
                try:
                    self._send(200, reply)
                except OSError:  # the client gave up waiting
                    pass

            def _send(self, status: int, reply, headers: dict | None = None, content_type="application/json"):
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _reset(self):
                # An abrupt close: the client reads no status line at all.
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}response/{name}"

    def fail(self, method: str, error: str = "internal_error", times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([error] * times)

    def fault(self, method: str, kind: str, times: int = 1) -> None:
        """ratelimited | server_error | reset_before | reset (after the
        message was taken) | timeout (answers after `timeout_delay`)."""
        self.faults.setdefault(method, []).extend([kind] * times)

    def _fault(self, method: str, body: dict) -> str | None:
        with self._lock:
            kind = self.faults[method].pop(0) if self.faults.get(method) else None
            if kind in ("ratelimited", "server_error", "reset_before"):
                self.calls.append(Call(f"{method}!{kind}", body))
                self._lock.notify_all()
            return kind

    def _answer(self, method: str, body: dict, path: str) -> dict:
        with self._lock:
            if self.failures.get(method):
                error = self.failures[method].pop(0)
                self.calls.append(Call(method + "!failed", body, path))
                self._lock.notify_all()
                return {"ok": False, "error": error}
            self.calls.append(Call(method, body, path))
            self._ts += 1
            ts = f"1800000000.{self._ts:06d}"
            self._lock.notify_all()
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "renkei", "team": "demo"}
        if method in ("chat.postMessage", "chat.update"):
            body["_ts"] = body.get("ts") or ts
            return {"ok": True, "channel": self._channel(body), "ts": body["_ts"], "message": body}
        if method == "files.getUploadURLExternal":
            return {"ok": True, "upload_url": f"{self.url}upload/F{ts[-6:]}", "file_id": f"F{ts[-6:]}"}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in body.get("files") or []]}
        if method in ("conversations.history", "conversations.replies"):
            # history: the channel's top-level messages, newest first, at most
            # `limit`; replies: a thread's parent and its replies, oldest first.
            thread = body.get("ts") if method == "conversations.replies" else None
            with self._lock:
                posted = [c.body for c in self.calls if c.method == "chat.postMessage"
                          and self._channel(c.body) == body.get("channel")
                          and (c.body.get("thread_ts") == thread or thread and c.body.get("_ts") == thread)]
            if not thread:
                posted = list(reversed(posted))[:int(body.get("limit") or 100)]
            keep_metadata = str(body.get("include_all_metadata")).lower() in ("true", "1")
            return {"ok": True, "messages": [
                {"ts": p["_ts"], "text": p.get("text", ""), **({"metadata": p["metadata"]}
                                                               if keep_metadata and p.get("metadata") else {})}
                for p in posted]}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(body.get("users", "X"))[1:]}}
        if method in ("views.open", "views.update", "views.push"):
            return {"ok": True, "view": {"id": "V" + ts[-6:], **(body.get("view") or {})}}
        return {"ok": True}

    @staticmethod
    def _channel(body: dict) -> str:
        channel = body.get("channel", "")
        return "D" + channel[1:] if channel.startswith("U") else channel  # a DM lands in the IM channel

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until `count` calls of `method` arrived (posts go out in the background)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([c for c in self.calls if c.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return [c for c in self.calls if c.method == method]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
