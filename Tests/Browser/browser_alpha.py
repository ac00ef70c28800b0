#!/usr/bin/env python3
"""Drives a headless browser over alpha.html and prints what it read as JSON.

    browser_alpha.py --browser chromium|firefox --video FILE --spec SPEC.json [--timeout S]

SPEC.json: {"probes": [{"time": seconds, "points": [[x, y], ...]}, ...]}. The page and the video
are served from 127.0.0.1 by a small HTTP server with Range support (Chromium's seeks snap back
to 0 without it, and file:// URLs taint the canvas). The browser runs with a fresh profile and is
ended by its process id. Exit status 0 with the page's JSON on stdout; 2 when the browser is not
installed; 1 on failure or time-out.
"""
import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def make_handler(files, result, done):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path not in files:
                self.send_error(404)
                return
            name, content_type = files[path]
            size = os.path.getsize(name)
            start, end = 0, size - 1
            match = re.match(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
            status = 200
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    if match.group(2):
                        end = min(int(match.group(2)), size - 1)
                else:  # suffix range: the last N bytes
                    start = max(0, size - int(match.group(2)))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            with open(name, "rb") as f:
                f.seek(start)
                remaining = end - start + 1
                try:
                    while remaining > 0:
                        chunk = f.read(min(65536, remaining))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        remaining -= len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            self.send_response(204)
            self.end_headers()
            if self.path == "/result" and not done.is_set():
                result["body"] = body.decode("utf-8")
                done.set()

    return Handler


def browser_command(browser, profile, url):
    if browser == "chromium":
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            return None
        return [exe, "--headless=new", "--no-sandbox", f"--user-data-dir={profile}",
                "--autoplay-policy=no-user-gesture-required", "--no-first-run",
                "--disable-gpu", "--mute-audio", url]
    exe = shutil.which("firefox-esr") or shutil.which("firefox")
    if not exe:
        return None
    with open(os.path.join(profile, "user.js"), "w") as prefs:
        prefs.write('user_pref("media.autoplay.default", 0);\n')
        prefs.write('user_pref("browser.shell.checkDefaultBrowser", false);\n')
        prefs.write('user_pref("datareporting.policy.dataSubmissionEnabled", false);\n')
    return [exe, "--headless", "--no-remote", "--profile", profile, url]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--browser", choices=["chromium", "firefox"], required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    spec = json.load(open(args.spec))
    spec["video"] = "/video.webm"
    work = tempfile.mkdtemp(prefix="webm-browser-")
    spec_path = os.path.join(work, "spec.json")
    json.dump(spec, open(spec_path, "w"))
    files = {
        "/alpha.html": (os.path.join(HERE, "alpha.html"), "text/html; charset=utf-8"),
        "/spec.json": (spec_path, "application/json"),
        "/video.webm": (os.path.abspath(args.video), "video/webm"),
    }
    result, done = {}, threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(files, result, done))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alpha.html?spec=/spec.json"

    profile = os.path.join(work, "profile")
    os.makedirs(profile)
    command = browser_command(args.browser, profile, url)
    if command is None:
        print(f"{args.browser} is not installed", file=sys.stderr)
        return 2
    log = open(os.path.join(work, "browser.log"), "w")
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        finished = done.wait(args.timeout)
    finally:
        # End the browser we started: its process group (it was made a session leader above).
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(5)
                break
            except subprocess.TimeoutExpired:
                continue
        server.shutdown()
        log.close()
    if not finished:
        tail = open(os.path.join(work, "browser.log"), errors="replace").read()[-3000:]
        print(f"{args.browser}: no result within {args.timeout} s; browser log:\n{tail}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(result["body"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
