"""serve-probe against servers that answer HTTP 200 with something other than an OpenAI completion stream: one
error line naming what came back, exit 2, nothing written (a local server thread; no engine, no subprocess)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from offline_bench.cli.main import run_app

MODELS = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()


def _server(body: bytes, content_type: str) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, payload: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._send(MODELS if self.path.startswith("/v1/models") else b"{}", "application/json")

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._send(body, content_type)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def html_server() -> Iterator[str]:
    yield from _server(b"<html><body>Welcome to nginx!</body></html>", "text/html")


@pytest.fixture
def json_server() -> Iterator[str]:
    yield from _server(b'data: {"id": 1, "object": "something"}\n\ndata: [DONE]\n\n', "text/event-stream")


def _probe(url: str, tmp_path, capsys) -> tuple[int, str]:  # noqa: ANN001
    out = tmp_path / "s.json"
    rc = run_app(["serve-probe", "--base-url", url, "--served-model-name", "m", "--tokenizer", "preset:tiny-llama",
                  "--num-prompts", "2", "--warmup", "0", "--output-len", "4", "--input-len", "8", "-o", str(out)])
    assert not out.exists(), "nothing may be written for a server that is not OpenAI-compatible"
    return rc, capsys.readouterr().err


def test_html_reply_is_refused_naming_what_came_back(html_server, tmp_path, capsys):
    rc, err = _probe(html_server, tmp_path, capsys)
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "not answer with an OpenAI completion stream" in err
    assert "HTTP 200" in err and "text/html" in err and "Welcome to nginx" in err


def test_stream_without_choices_is_refused(json_server, tmp_path, capsys):
    rc, err = _probe(json_server, tmp_path, capsys)
    assert rc == 2
    assert "not answer with an OpenAI completion stream" in err and "text/event-stream" in err
