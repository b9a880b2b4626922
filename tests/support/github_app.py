"""A stand-in for GitHub's two REST endpoints a GitHub App installation token needs (the real
API cannot be reached from the tests): GET /repos/{owner}/{repo}/installation and
POST /app/installations/{id}/access_tokens. It checks the App's JWT as GitHub does: a Bearer
JWT, alg RS256, a signature valid against the App's public key (verified by the openssl
command, not by the code under test's library), iss = the App id, iat not in the future, exp
not passed and at most 10 minutes ahead (and exp - iat <= 10 minutes). A rejected JWT gets
GitHub's 401 and message. A token it mints becomes the password of user x-access-token in the
git server's (lighttpd's) users file, so the git server accepts that token and no other.

Only the standard library and the openssl command. Arguments: see main().
"""

import argparse
import base64
import http.server
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
import time

DOCS = "https://docs.github.com/rest"
SKEW = 5  # seconds of tolerance for the iat/exp checks (GitHub's own is small)


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.installations = {}
        for pair in filter(None, args.installations.split(",")):
            owner, iid = pair.split("=")
            self.installations[owner] = int(iid)

    def now(self):
        return time.time() + self.args.clock_offset

    def note(self, name, line):
        with self.lock:
            with open(os.path.join(self.args.dir, name), "a") as f:
                f.write(line + "\n")

    def check_jwt(self, header):
        """None if the JWT is GitHub's kind of valid, else GitHub's message."""
        undecodable = "A JSON web token could not be decoded"
        if not header or not header.startswith("Bearer "):
            return undecodable
        token = header[len("Bearer "):].strip()
        self.note("jwts", token)
        parts = token.split(".")
        if len(parts) != 3:
            return undecodable
        try:
            head = json.loads(b64url(parts[0]))
            claims = json.loads(b64url(parts[1]))
            signature = b64url(parts[2])
        except Exception:
            return undecodable
        if head.get("alg") != "RS256":
            return undecodable
        with tempfile.NamedTemporaryFile(dir=self.args.dir) as sig:
            sig.write(signature)
            sig.flush()
            verified = subprocess.run(
                ["openssl", "dgst", "-sha256", "-verify", self.args.public_key,
                 "-signature", sig.name],
                input=(parts[0] + "." + parts[1]).encode(),
                capture_output=True,
            )
        if verified.returncode != 0:
            self.note("requests", "signature rejected")
            return undecodable
        self.note("claims", json.dumps(claims))
        if str(claims.get("iss")) != self.args.app_id:
            return undecodable
        now = self.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or isinstance(iat, bool) or iat > now + SKEW:
            return ("'Issued at' claim ('iat') must be an Integer representing the time "
                    "that the assertion was issued")
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now:
            return ("'Expiration time' claim ('exp') must be a numeric value representing "
                    "the future time at which the assertion expires")
        if exp > now + 600 + SKEW or exp - iat > 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        return None

    def mint(self):
        """A new token, made the only x-access-token password the git server accepts."""
        token = "ghs_" + secrets.token_hex(18)
        with self.lock:
            users = self.args.users
            with open(users) as f:
                kept = [l for l in f.read().splitlines()
                        if l and not l.startswith("x-access-token:")]
            kept.append("x-access-token:" + token)
            with open(users + ".new", "w") as f:
                f.write("\n".join(kept) + "\n")
            os.replace(users + ".new", users)
            with open(os.path.join(self.args.dir, "tokens"), "a") as f:
                f.write(token + "\n")
        return token


def handler(state):
    prefix = state.args.prefix.rstrip("/")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def date_time_string(self, timestamp=None):
            return super().date_time_string(state.now())

        def answer(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            state.note("requests", f"{self.command} {self.path} {status}")

        def route(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with state.lock:
                state.requests += 1
                n = state.requests
            if n <= state.args.fail_first:
                return self.answer(state.args.fail_status,
                                   {"message": "Service unavailable"},
                                   [("Retry-After", "1")])
            if not self.path.startswith(prefix + "/"):
                return self.answer(404, {"message": "Not Found", "documentation_url": DOCS})
            path = self.path[len(prefix):]
            if self.headers.get("Accept") != "application/vnd.github+json":
                state.note("requests", "missing Accept: application/vnd.github+json")
            if not self.headers.get("User-Agent"):
                return self.answer(403, {"message": "Request forbidden by administrative rules. "
                                         "Please make sure your request has a User-Agent header"})
            version = self.headers.get("X-GitHub-Api-Version")
            if version is not None and version != "2022-11-28":
                return self.answer(400, {"message": f"API version '{version}' is not supported.",
                                         "documentation_url": DOCS})
            problem = state.check_jwt(self.headers.get("Authorization"))
            if problem:
                return self.answer(401, {"message": problem, "documentation_url": DOCS})
            parts = path.strip("/").split("/")
            if self.command == "GET" and len(parts) == 4 and parts[0] == "repos" \
                    and parts[3] == "installation":
                iid = state.installations.get(parts[1])
                if iid is None:
                    return self.answer(404, {"message": "Not Found", "documentation_url": DOCS})
                return self.answer(200, {"id": iid, "account": {"login": parts[1]},
                                         "app_id": int(state.args.app_id)
                                         if state.args.app_id.isdigit() else 0})
            if self.command == "POST" and len(parts) == 4 and parts[0] == "app" \
                    and parts[1] == "installations" and parts[3] == "access_tokens":
                if not parts[2].isdigit() or int(parts[2]) not in state.installations.values():
                    return self.answer(404, {"message": "Not Found", "documentation_url": DOCS})
                if body:
                    state.note("bodies", body.decode())
                    json.loads(body)
                expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.now() + 3600))
                return self.answer(201, {"token": state.mint(), "expires_at": expires,
                                         "permissions": {"contents": "read"}})
            return self.answer(404, {"message": "Not Found", "documentation_url": DOCS})

        do_GET = route
        do_POST = route

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True, help="where the logs go")
    p.add_argument("--app-id", required=True)
    p.add_argument("--public-key", required=True)
    p.add_argument("--users", required=True, help="lighttpd's plain users file")
    p.add_argument("--installations", default="", help="owner=id,owner=id")
    p.add_argument("--prefix", default="")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--clock-offset", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=503)
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler(State(args)))
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
