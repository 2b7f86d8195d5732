"""The ledger: accounts and the transfers between them, on Postgres.

POST /transfers {"id", "from", "to", "amount"} moves money in one transaction: the debit,
the credit and the transfer's row commit together or not at all. A transfer id is applied at
most once: a retried request with the same id answers 200 with the first outcome instead of
moving the money again. 201 applied, 200 already applied, 409 insufficient funds (nothing
moved), 400 malformed, 503 when the database cannot be reached.

GET /accounts/NAME gives a balance; GET /health answers 200 once the database does.

Environment: LEDGER_PORT, LEDGER_DATABASE_URL, and LEDGER_DEDUPE=off for the deliberately
broken variant that applies a retried transfer again (the bug the examples' scenarios catch).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

DATABASE_URL = os.environ["LEDGER_DATABASE_URL"]
DEDUPE = os.environ.get("LEDGER_DEDUPE", "on") != "off"
OPENING_BALANCE = 1000
ACCOUNTS = ["alice", "bob", "carol", "dave"]


def connect():
    return psycopg.connect(DATABASE_URL, connect_timeout=3, autocommit=False)


def migrate():
    with connect() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS accounts (name text PRIMARY KEY, balance bigint NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS transfers (seq bigserial PRIMARY KEY, transfer_id text NOT NULL,"
            " from_account text NOT NULL, to_account text NOT NULL, amount bigint NOT NULL)"
        )
        if DEDUPE:
            conn.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS transfers_once ON transfers (transfer_id)"
            )
        for name in ACCOUNTS:
            conn.execute(
                "INSERT INTO accounts (name, balance) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (name, OPENING_BALANCE),
            )


def transfer(request):
    with connect() as conn:
        if DEDUPE:
            row = conn.execute(
                "INSERT INTO transfers (transfer_id, from_account, to_account, amount)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (transfer_id) DO NOTHING RETURNING seq",
                (request["id"], request["from"], request["to"], request["amount"]),
            ).fetchone()
            if row is None:
                return 200, {"id": request["id"], "status": "already applied"}
        else:
            conn.execute(
                "INSERT INTO transfers (transfer_id, from_account, to_account, amount)"
                " VALUES (%s, %s, %s, %s)",
                (request["id"], request["from"], request["to"], request["amount"]),
            )
        debited = conn.execute(
            "UPDATE accounts SET balance = balance - %s WHERE name = %s AND balance >= %s"
            " RETURNING balance",
            (request["amount"], request["from"], request["amount"]),
        ).fetchone()
        if debited is None:
            conn.rollback()
            return 409, {"error": "insufficient funds or unknown account"}
        credited = conn.execute(
            "UPDATE accounts SET balance = balance + %s WHERE name = %s RETURNING balance",
            (request["amount"], request["to"]),
        ).fetchone()
        if credited is None:
            conn.rollback()
            return 409, {"error": "unknown account"}
    return 201, {"id": request["id"], "status": "applied"}


def valid(request):
    return (
        isinstance(request, dict)
        and isinstance(request.get("id"), str)
        and request.get("from") in ACCOUNTS
        and request.get("to") in ACCOUNTS
        and request["from"] != request["to"]
        and isinstance(request.get("amount"), int)
        and request["amount"] > 0
    )


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        try:
            if self.path == "/health":
                with connect() as conn:
                    conn.execute("SELECT 1")
                return self.answer(200, {"status": "ok"})
            if self.path.startswith("/accounts/"):
                name = self.path[len("/accounts/"):]
                with connect() as conn:
                    row = conn.execute(
                        "SELECT balance FROM accounts WHERE name = %s", (name,)
                    ).fetchone()
                if row is None:
                    return self.answer(404, {"error": "no such account"})
                return self.answer(200, {"name": name, "balance": row[0]})
            return self.answer(404, {"error": "no such route"})
        except psycopg.OperationalError as error:
            return self.answer(503, {"error": str(error)})

    def do_POST(self):
        if self.path != "/transfers":
            return self.answer(404, {"error": "no such route"})
        try:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"null")
        except (ValueError, json.JSONDecodeError):
            return self.answer(400, {"error": "expected a JSON body"})
        if not valid(request):
            return self.answer(400, {"error": "expected {id, from, to, amount > 0}"})
        try:
            status, body = transfer(request)
        except psycopg.OperationalError as error:
            return self.answer(503, {"error": str(error)})
        return self.answer(status, body)

    def log_message(self, format, *args):
        sys.stderr.write("ledger: " + (format % args) + "\n")


if __name__ == "__main__":
    migrate()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["LEDGER_PORT"])), Handler)
    print(f"ledger listening (dedupe {'on' if DEDUPE else 'off'})", flush=True)
    server.serve_forever()
