"""HTTP plumbing shared by the fake chat servers."""
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Waiting:
    """Mixin of the fakes (which hold self.lock, a Condition)."""

    def wait(self, cond, timeout=20.0):
        """Polls cond() under the lock until true or timeout; returns it."""
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if cond():
                    return True
            time.sleep(0.02)
        with self.lock:
            return cond()


class QuietServer(ThreadingHTTPServer):
    """Clients that vanish mid-answer (a killed bot) are expected here."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body in separate writes stall 40 ms otherwise

    def log_message(self, *a):
        pass

    def reply(self, status, obj=None, raw=None, headers=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + body)  # one write
        self._headers_buffer = []

    def drop(self):
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True
