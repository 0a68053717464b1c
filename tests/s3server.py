"""moto's S3-compatible HTTP server on a loopback port, for any test that needs a real S3 endpoint.

A real server (not moto's in-process mock) so the code under test goes through botocore's HTTP
stack, timeouts and error parsing exactly as it would against MinIO or AWS. Port 0 lets the
operating system pick a free port, so parallel sessions cannot collide.
"""

from __future__ import annotations

from collections.abc import Callable


def start_s3_server() -> tuple[str, Callable[[], None]]:
    """Start the server; return its URL ("http://127.0.0.1:PORT") and the function that stops it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server.stop
