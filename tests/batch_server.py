"""A local batch-API server on 127.0.0.1: OpenAI ``/v1/files`` + ``/v1/batches`` and Anthropic
``/v1/messages/batches``. Replies to 'say N' with 'N'; a request whose N is in ``fail`` fails
(an error line naming the cause). A batch ends once ``release`` is set and it was polled
``polls_to_finish`` times. Counts submissions."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class BatchServer:
    def __init__(self, *, fail: frozenset[int] = frozenset(), polls_to_finish: int = 2) -> None:
        self.fail = fail
        self.polls_to_finish = polls_to_finish
        self.release = threading.Event()
        self.release.set()
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.submissions = 0
        self.submitted_ids: list[str] = []
        self.ids = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.post(self, body)

            def do_GET(self) -> None:
                with server.lock:
                    server.get(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- protocol ---------------------------------------------------------------------------
    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, data: Any, *, raw: bool = False) -> None:
        body = data if raw else json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/jsonl" if raw else "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def post(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        if path == "/v1/files":
            head = f"Content-Type: {handler.headers['Content-Type']}\r\n\r\n".encode()
            message = email.message_from_bytes(head + body, policy=email.policy.HTTP)
            content = next(p.get_payload(decode=True) for p in message.iter_parts() if p.get_filename())
            file_id = f"file-{next(self.ids)}"
            self.files[file_id] = content
            self.send(handler, 200, {"id": file_id, "object": "file", "purpose": "batch"})
        elif path == "/v1/batches":
            request = json.loads(body)
            lines = [json.loads(line) for line in self.files[request["input_file_id"]].splitlines() if line.strip()]
            batch_id = self._new_batch("openai", [(row["custom_id"], row["body"]) for row in lines])
            self.send(handler, 200, {"id": batch_id, "object": "batch", "status": "validating"})
        elif path == "/v1/messages/batches":
            request = json.loads(body)
            batch_id = self._new_batch("anthropic", [(r["custom_id"], r["params"]) for r in request["requests"]])
            self.send(handler, 200, {"id": batch_id, "type": "message_batch", "processing_status": "in_progress"})
        else:
            self.send(handler, 404, {"error": {"message": f"no route {path}"}})

    def _new_batch(self, kind: str, requests: list[tuple[str, dict[str, Any]]]) -> str:
        self.submissions += 1
        batch_id = f"batch_{next(self.ids)}"
        self.submitted_ids.append(batch_id)
        self.batches[batch_id] = {"kind": kind, "requests": requests, "polls": 0, "done": False}
        return batch_id

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        if match := re.fullmatch(r"/v1/(messages/)?batches/(\w+)", path):
            batch = self.batches[match.group(2)]
            batch["polls"] += 1
            if self.release.is_set() and batch["polls"] >= self.polls_to_finish and not batch["done"]:
                self._finish(match.group(2), batch)
            self.send(handler, 200, self._view(match.group(2), batch))
        elif match := re.fullmatch(r"/v1/files/([\w-]+)/content", path):
            self.send(handler, 200, self.files[match.group(1)], raw=True)
        elif match := re.fullmatch(r"/v1/messages/batches/(\w+)/results", path):
            self.send(handler, 200, self.files[f"results-{match.group(1)}"], raw=True)
        else:
            self.send(handler, 404, {"error": {"message": f"no route {path}"}})

    def _view(self, batch_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        if batch["kind"] == "anthropic":
            view = {"id": batch_id, "processing_status": "ended" if batch["done"] else "in_progress"}
            if batch["done"]:
                view["results_url"] = f"{self.url}/messages/batches/{batch_id}/results"
            return view
        view = {"id": batch_id, "status": "completed" if batch["done"] else "in_progress"}
        if batch["done"]:
            view.update(output_file_id=f"out-{batch_id}", error_file_id=f"err-{batch_id}")
        return view

    def _finish(self, batch_id: str, batch: dict[str, Any]) -> None:
        batch["done"] = True
        out, err = [], []
        for custom_id, body in batch["requests"]:
            number = int(body["messages"][-1]["content"].split()[-1])
            failed = number in self.fail
            if batch["kind"] == "anthropic":
                result = (
                    {"type": "errored", "error": {"type": "error", "error": {"message": f"refused item {number}"}}}
                    if failed
                    else {
                        "type": "succeeded",
                        "message": {
                            "content": [{"type": "text", "text": str(number)}],
                            "usage": {"input_tokens": 3, "output_tokens": 1},
                            "stop_reason": "end_turn",
                        },
                    }
                )
                out.append({"custom_id": custom_id, "result": result})
            elif failed:
                err.append(
                    {
                        "custom_id": custom_id,
                        "response": {"status_code": 400, "body": {"error": {"message": f"refused item {number}"}}},
                        "error": None,
                    }
                )
            else:
                completion = {
                    "choices": [{"message": {"role": "assistant", "content": str(number)}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
                }
                out.append(
                    {"custom_id": custom_id, "response": {"status_code": 200, "body": completion}, "error": None}
                )
        lines = "".join(json.dumps(row) + "\n" for row in out).encode()
        if batch["kind"] == "anthropic":
            self.files[f"results-{batch_id}"] = lines
        else:
            self.files[f"out-{batch_id}"] = lines
            self.files[f"err-{batch_id}"] = "".join(json.dumps(row) + "\n" for row in err).encode()
