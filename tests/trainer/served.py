"""A real HTTP server on 127.0.0.1 for the tests that read shards over http: it serves a folder, and answers 500
under /broken/ (a server error)."""
from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BROKEN = "/broken/"


class FolderHandler(SimpleHTTPRequestHandler):
    """The folder's files; a 500 for every path under BROKEN; no log lines."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith(BROKEN):
            self.send_error(500, "the server broke")
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if self.path.startswith(BROKEN):
            self.send_error(500, "the server broke")
            return
        super().do_HEAD()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve `folder` on a free port of 127.0.0.1 while in the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(FolderHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
