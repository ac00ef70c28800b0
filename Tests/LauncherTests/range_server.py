#!/usr/bin/env python3
"""A static HTTP server with byte ranges, for the launcher's download tests (127.0.0.1 only).

Python's http.server answers every GET with the whole file; this one honours `Range: bytes=N-`
and `bytes=N-M` with 206 and Content-Range, and can cut a download short on purpose.

Usage: range_server.py ROOT LOG [--cut-first BYTES]

  ROOT         folder served: GET /a/b/c returns ROOT/a/b/c
  LOG          each request is appended as one line: "GET /path RANGE-OR-DASH STATUS"
  --cut-first  the first GET of each file without a Range header announces the whole length but
               closes the connection after BYTES bytes (an interrupted download)

Prints the port it listens on, then serves until killed.
"""
import http.server
import os
import re
import sys
import threading

root, log_path = sys.argv[1], sys.argv[2]
cut_first = int(sys.argv[sys.argv.index("--cut-first") + 1]) if "--cut-first" in sys.argv else None
cut_done = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, status):
        with lock, open(log_path, "a") as log:
            log.write(f"{self.command} {self.path} {self.headers.get('Range') or '-'} {status}\n")

    def do_GET(self):
        path = os.path.join(root, self.path.lstrip("/"))
        if not os.path.isfile(path):
            self.record(404)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self.record(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        status = 206 if match else 200
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        limit = end - start + 1
        with lock:
            cut = cut_first is not None and not match and path not in cut_done
            if cut:
                cut_done.add(path)
        if cut:
            limit = min(limit, cut_first)
        with open(path, "rb") as f:
            f.seek(start)
            self.wfile.write(f.read(limit))
        if cut:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
