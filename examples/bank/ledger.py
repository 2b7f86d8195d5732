"""The ledger: accounts and the transfers between them, on Postgres.

POST /transfers {"id", "from", "to", "amount"} moves money in one transaction: the debit,
the credit and the transfer's row commit together or not at all. A transfer id is applied at
most once: a retried request with the same id answers 200 with the first outcome instead of
moving the money again. 201 applied, 200 already applied, 409 insufficient funds (nothing
moved), 400 malformed, 503 when the database cannot be reached.

GET /accounts/NAME gives a balance; GET /transfers/ID answers 200 once transfer ID was
applied, else 404; GET /health answers 200 once the database does.

Every applied transfer is also an event on Kafka (topic ledger-events, keyed by the account
debited, header event-id = the transfer id), published through an outbox: the event's row
commits with the transfer, and a relay thread publishes unpublished rows in order with an
idempotent producer, marking them published only once Kafka acknowledged them. A row whose
delivery is still pending is never produced a second time.

`ledger.py migrate` creates the tables and opens the accounts, then exits: faultline runs it
before each start on fresh databases (`before` in faultline.toml).

Environment: LEDGER_PORT, LEDGER_DATABASE_URL, LEDGER_KAFKA_BOOTSTRAP, and three switches for
deliberately broken variants the examples' scenarios catch: LEDGER_DEDUPE=off applies a
retried transfer again; LEDGER_RELAY=resend produces every unpublished row again each round,
also the ones whose delivery is still pending (an outbox relay that forgets what it sent);
LEDGER_PRODUCER=plain publishes with a producer that is not idempotent, whose own retry of a
produce the broker appended but never acknowledged appends the event again.
"""

import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from confluent_kafka import Producer

DATABASE_URL = os.environ["LEDGER_DATABASE_URL"]
KAFKA_BOOTSTRAP = os.environ["LEDGER_KAFKA_BOOTSTRAP"]
TOPIC = "ledger-events"
DEDUPE = os.environ.get("LEDGER_DEDUPE", "on") != "off"
RESEND = os.environ.get("LEDGER_RELAY", "once") == "resend"
IDEMPOTENT = os.environ.get("LEDGER_PRODUCER", "idempotent") != "plain"
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
        conn.execute(
            "CREATE TABLE IF NOT EXISTS outbox (seq bigint PRIMARY KEY, transfer_id text NOT NULL,"
            " account text NOT NULL, payload text NOT NULL, published_at timestamptz)"
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
            row = conn.execute(
                "INSERT INTO transfers (transfer_id, from_account, to_account, amount)"
                " VALUES (%s, %s, %s, %s) RETURNING seq",
                (request["id"], request["from"], request["to"], request["amount"]),
            ).fetchone()
        event = {
            "transfer_id": request["id"],
            "from": request["from"],
            "to": request["to"],
            "amount": request["amount"],
            "seq": row[0],
        }
        conn.execute(
            "INSERT INTO outbox (seq, transfer_id, account, payload) VALUES (%s, %s, %s, %s)",
            (row[0], request["id"], request["from"], json.dumps(event)),
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


def relay():
    """Publishes the outbox in order, forever; each row is produced once and marked published
    when Kafka acknowledged it."""
    producer = Producer(
        {
            "bootstrap.servers": KAFKA_BOOTSTRAP,
            "enable.idempotence": IDEMPOTENT,
            "acks": "all",
            "message.timeout.ms": 300000,
            "log_level": 3,
        }
    )
    in_flight = set()
    acknowledged = []
    lock = threading.Lock()

    def delivered(seq, error):
        with lock:
            in_flight.discard(seq)
            if error is None:
                acknowledged.append(seq)
            else:
                sys.stderr.write(f"ledger: event {seq} not delivered: {error}\n")

    while True:
        try:
            with connect() as conn:
                with lock:
                    done = list(acknowledged)
                if done:
                    conn.execute(
                        "UPDATE outbox SET published_at = now() WHERE seq = ANY(%s)", (done,)
                    )
                    conn.commit()
                    # Only now: until the mark is committed, a delivered row is not produced again.
                    with lock:
                        acknowledged[:] = [seq for seq in acknowledged if seq not in done]
                rows = conn.execute(
                    "SELECT seq, transfer_id, account, payload FROM outbox"
                    " WHERE published_at IS NULL ORDER BY seq LIMIT 100"
                ).fetchall()
            for seq, transfer_id, account, payload in rows:
                with lock:
                    if not RESEND and (seq in in_flight or seq in acknowledged):
                        continue
                    in_flight.add(seq)
                producer.produce(
                    TOPIC,
                    key=account,
                    value=payload,
                    headers=[("event-id", transfer_id)],
                    on_delivery=lambda error, _message, seq=seq: delivered(seq, error),
                )
            producer.poll(0.2)
        except psycopg.OperationalError as error:
            sys.stderr.write(f"ledger: relay: {error}\n")
            producer.poll(0.5)
        except BufferError:
            producer.poll(0.5)
        except Exception as error:  # the relay must outlive any one bad round
            sys.stderr.write(f"ledger: relay: {error!r}\n")
            time.sleep(0.5)
        time.sleep(0.05)


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
            if self.path.startswith("/transfers/"):
                transfer_id = urllib.parse.unquote(self.path[len("/transfers/"):])
                with connect() as conn:
                    row = conn.execute(
                        "SELECT min(seq) FROM transfers WHERE transfer_id = %s", (transfer_id,)
                    ).fetchone()
                if row[0] is None:
                    return self.answer(404, {"error": "no such transfer"})
                return self.answer(200, {"id": transfer_id, "status": "applied", "seq": row[0]})
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
    if sys.argv[1:] == ["migrate"]:
        # The migration step faultline runs before each start on fresh databases
        # (`before` in faultline.toml), as alembic or flyway would be run.
        migrate()
        print("ledger: schema and opening balances in place", flush=True)
        sys.exit(0)
    threading.Thread(target=relay, name="outbox-relay", daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["LEDGER_PORT"])), Handler)
    print(
        f"ledger listening (dedupe {'on' if DEDUPE else 'off'},"
        f" relay {'resend' if RESEND else 'once'})",
        flush=True,
    )
    server.serve_forever()
