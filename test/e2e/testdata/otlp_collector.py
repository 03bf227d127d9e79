#!/usr/bin/env python3
"""A stand-in OpenTelemetry collector for the L7 end-to-end tests: takes
OTLP/HTTP JSON on POST /v1/traces and appends each span it carries, one
JSON object per line, to a file (with the resource's attributes), so a
test can read what a real collector would have stored.

  otlp_collector.py HOST PORT SPANS_FILE
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/json":
            self.send_response(404)
            self.end_headers()
            return
        request = json.loads(body)
        with open(sys.argv[3], "a") as out:
            for rs in request["resourceSpans"]:
                resource = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        span["resource"] = resource
                        out.write(json.dumps(span) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


HTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
