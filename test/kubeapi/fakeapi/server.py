"""The HTTPS server: one thread per connection, TLS handshake in that thread.

The listening socket is plain TCP and each accepted connection is wrapped in
its own thread, so a client that stalls its handshake (or fails it, as the
"wrong CA" tests do) never holds up the accept loop.
"""

import socket
import ssl
import sys
from http.server import ThreadingHTTPServer

from .handler import Handler

HANDSHAKE_TIMEOUT = 10


def tls_context(directory):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(f"{directory}/server.crt", f"{directory}/server.key")
    # Go's client offers h2 first; naming http/1.1 makes the choice explicit.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Server(ThreadingHTTPServer):
    daemon_threads = True  # open watches must not keep the process alive at exit
    allow_reuse_address = True

    def __init__(self, app, port, listen="127.0.0.1"):
        self.app = app
        self.tls = tls_context(app.dir)
        super().__init__((listen, port), Handler)

    def finish_request(self, request, client_address):
        request.settimeout(HANDSHAKE_TIMEOUT)
        # Headers and body leave in separate writes; with Nagle's algorithm the
        # body would wait for the client's delayed ACK (~40 ms a request).
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write(f"fake-apiserver: TLS handshake with {client_address[0]}:"
                             f"{client_address[1]} failed: {e}\n")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # A client that goes away mid-response is routine here (watches are
        # cut by tests all the time); anything else gets its traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, ssl.SSLError)):
            sys.stderr.write(f"fake-apiserver: connection {client_address}: {exc!r}\n")
        else:
            super().handle_error(request, client_address)
