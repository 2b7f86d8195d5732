"""The teller: the bank's front door. POST /transfers forwards a transfer to the ledger with
a per-attempt timeout, and retries (same transfer id, so the ledger applies it once) after a
timeout, a transport error or a 5xx: up to TELLER_ATTEMPTS attempts with a short backoff.
Answers the ledger's status. When no attempt got an answer the transfer may still have been
applied (an answer lost on the way back): the teller asks the ledger once, GET
/transfers/ID, and answers 200 if it was applied, else 502.

POST /login {"user", "password"} answers {"token"} for an account holder (password
TELLER_PASSWORD); GET /accounts/NAME answers NAME's balance from the ledger to a request with
`Authorization: Bearer TOKEN` of NAME's login, else 401. A token is signed, not remembered: it
holds across a restart of the teller.

GET /fees answers the fee schedule, from memory: it needs no ledger. An error it did not
expect is answered 500, as a web framework's catch-all would.

Environment: TELLER_PORT, TELLER_LEDGER_URL, TELLER_TIMEOUT_MS (default 1000),
TELLER_ATTEMPTS (default 3), TELLER_ERRORS (default `plain`; `relay` starts a deliberately
broken teller that relays the ledger's error message by reading it from the ledger's JSON error
body, which a 502 or 504 from something between the two, with an empty body, does not have),
TELLER_SERVER (default `threads`, a thread per request; `single` starts a deliberately broken
teller that serves one request at a time, so one slow call to the ledger stalls every request,
those that never reach the ledger too — a blocking call inside an event loop does the same).
"""

import hashlib
import hmac
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

LEDGER_URL = os.environ["TELLER_LEDGER_URL"].rstrip("/")
TIMEOUT = int(os.environ.get("TELLER_TIMEOUT_MS", "1000")) / 1000
ATTEMPTS = int(os.environ.get("TELLER_ATTEMPTS", "3"))
ERRORS = os.environ.get("TELLER_ERRORS", "plain")
if ERRORS not in ("plain", "relay"):
    sys.exit(f"teller: TELLER_ERRORS={ERRORS}: expected plain or relay")
SERVER = os.environ.get("TELLER_SERVER", "threads")
if SERVER not in ("threads", "single"):
    sys.exit(f"teller: TELLER_SERVER={SERVER}: expected threads or single")
FEES = json.dumps({"transfer_fee_cents": 0, "currency": "EUR"}).encode()
PASSWORD = os.environ.get("TELLER_PASSWORD", "teller")
SECRET = os.environ.get("TELLER_SECRET", "bank-example-not-a-secret").encode()
HOLDERS = ("alice", "bob", "carol", "dave")


def token_for(user):
    return user + "." + hmac.new(SECRET, user.encode(), hashlib.sha256).hexdigest()


def holder_of(authorization):
    """The account holder a `Bearer TOKEN` header was issued to, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    user = token.partition(".")[0]
    if scheme != "Bearer" or user not in HOLDERS:
        return None
    return user if hmac.compare_digest(token, token_for(user)) else None


def balance(name):
    """The ledger's answer for NAME's account: (status, body)."""
    url = LEDGER_URL + "/accounts/" + urllib.parse.quote(name, safe="")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return (error.code, error.read()) if error.code < 500 else (502, error.read())
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        return 502, json.dumps({"error": f"ledger: {error}"}).encode()


def lookup(transfer_id):
    """Whether the ledger applied `transfer_id`: True, False, or None when it cannot say."""
    url = LEDGER_URL + "/transfers/" + urllib.parse.quote(transfer_id, safe="")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        return False if error.code == 404 else None
    except (urllib.error.URLError, TimeoutError, OSError):
        return None


def forward(body):
    last = "no attempt"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.1 * attempt)
        request = urllib.request.Request(
            LEDGER_URL + "/transfers",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return error.code, error.read()
            if ERRORS == "relay":
                # The bug: every 5xx is taken to be the ledger's own, with its JSON error body.
                last = "ledger: " + json.loads(error.read())["error"]
            else:
                last = f"ledger answered {error.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            last = f"ledger: {error}"
    try:
        transfer_id = json.loads(body).get("id")
    except (ValueError, AttributeError):
        transfer_id = None
    if isinstance(transfer_id, str) and lookup(transfer_id):
        return 200, json.dumps({"id": transfer_id, "status": "applied"}).encode()
    return 502, json.dumps({"error": last}).encode()


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, b'{"status": "ok"}')
        if self.path == "/fees":
            return self.answer(200, FEES)
        if self.path.startswith("/accounts/"):
            name = urllib.parse.unquote(self.path[len("/accounts/"):])
            holder = holder_of(self.headers.get("Authorization"))
            if holder is None:
                return self.answer(401, b'{"error": "log in first: POST /login"}')
            if holder != name:
                return self.answer(403, b'{"error": "not your account"}')
            return self.answer(*balance(name))
        return self.answer(404, b'{"error": "no such route"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        if self.path == "/login":
            try:
                login = json.loads(self.rfile.read(length) or b"null")
                user, password = login["user"], login["password"]
            except (ValueError, TypeError, KeyError):
                return self.answer(400, b'{"error": "expected {user, password}"}')
            if user not in HOLDERS or password != PASSWORD:
                return self.answer(401, b'{"error": "unknown user or wrong password"}')
            return self.answer(200, json.dumps({"token": token_for(user)}).encode())
        if self.path != "/transfers":
            return self.answer(404, b'{"error": "no such route"}')
        try:
            status, data = forward(self.rfile.read(length))
        except Exception as error:
            traceback.print_exc()
            status, data = 500, json.dumps({"error": f"internal: {error!r}"}).encode()
        return self.answer(status, data)

    def log_message(self, format, *args):
        sys.stderr.write("teller: " + (format % args) + "\n")


if __name__ == "__main__":
    serve = ThreadingHTTPServer if SERVER == "threads" else HTTPServer
    server = serve(("127.0.0.1", int(os.environ["TELLER_PORT"])), Handler)
    print("teller listening", flush=True)
    server.serve_forever()
