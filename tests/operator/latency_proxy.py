"""An HTTP proxy that adds latency to every request: AWS as slow as it is from afar.

The local AWS injects failures but no latency; the operator runs as a subprocess, so its
botocore cannot be hooked from a test. Pointing its AWS_ENDPOINT_URL here can.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class LatencyProxy:
    def __init__(self, upstream: str, delay: float) -> None:
        target = urlsplit(upstream)
        host, port, pause = target.hostname or "127.0.0.1", target.port or 80, delay
        # Set: AWS is unreachable, each connection is dropped unanswered (botocore's
        # ConnectionClosedError, as for an endpoint that is down).
        self.down = down = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if down.is_set():
                    self.close_connection = True
                    return
                time.sleep(pause)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection = http.client.HTTPConnection(host, port, timeout=60)
                try:
                    connection.request(self.command, self.path, body or None, headers)
                    reply = connection.getresponse()
                    data = reply.read()
                finally:
                    connection.close()
                self.send_response(reply.status, reply.reason)
                for key, value in reply.getheaders():
                    if key.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line per AWS call would drown the test's output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
