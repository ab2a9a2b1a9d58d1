"""The real embedded stack for end-to-end tests: PostgreSQL, the broker and the four
services as separate processes, on free ports in a temporary folder, with short clocks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from stack.stack import APPS, Stack, StackConfig
from tests.conftest import free_port, running_stack

SIGN_FOR_DEADLINE_SECONDS = 8


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        pg_port=free_port(),
        kafka_port=free_port(),
        ports={s: free_port() for s in APPS},
        env={
            "*": {"OUTBOX_POLL_INTERVAL_SECONDS": "1", "LOG_LEVEL": "INFO"},
            "tracking": {
                "SIGN_FOR_DEADLINE_SECONDS": str(SIGN_FOR_DEADLINE_SECONDS),
                "TIMER_POLL_INTERVAL_SECONDS": "0.5",
            },
            # A channel that is down gives up after two short tries (then the next one).
            "notify": {
                "DELIVERY_POLL_INTERVAL_SECONDS": "0.5",
                "DELIVERY_MAX_ATTEMPTS": "2",
                "DELIVERY_INLINE_ATTEMPTS": "2",
                "DELIVERY_TIMEOUT_SECONDS": "2",
                "DELIVERY_BACKOFF_BASE_SECONDS": "1",
                "DELIVERY_BACKOFF_MAX_SECONDS": "2",
            },
        },
    )
    yield from running_stack(config)


@pytest.fixture(scope="module")
async def http(stack):
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


class WebhookReceiver:
    """A real HTTP server standing in for a department's or supervisor's webhook."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path: str) -> list[dict]:
        with self.lock:
            return [
                {**r, "json": json.loads(r["body"])} for r in self.requests if r["path"] == path
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


# --- the console in a real browser (Playwright driving Debian's chromium) --------------------


@pytest.fixture(scope="session")
async def browser():
    from tests.e2e.console import launch_browser

    async with launch_browser() as b:
        yield b


@pytest.fixture(scope="session")
def console_url(stack) -> str:
    return stack.console_url
