"""A gateway's runtime state: its keys and TLS contexts, its global configuration, its log.

``GatewayRuntime`` is shared by the gateway's two listeners (``jisr.exchange.client_proxy``
and ``server_proxy``):

* the **configuration**: at start the newest cached copy is read back and verified again with
  the anchor (``anchor.json``, ``ca.pem``); ``refresh`` downloads ``<registry>/exchange/
  globalconf``, verifies it and caches it. Failed downloads are logged and change nothing,
  so the gateway keeps working on its cache until that expires (``usable_conf`` then returns
  None and calls are refused with ``OutdatedGlobalConf``); the next successful download
  resumes service by itself. ``jisr.exchange.server`` runs ``refresh`` on a schedule.
* **TLS**: the peer listener requires a client certificate issued by the instance CA or by
  the CA of an instance it federates with (``ssl.CERT_REQUIRED``; OpenSSL checks the chain
  and validity); the gateway then checks the certificate is the TLS certificate the
  configuration (or a federation's shared parameters) lists for a gateway and is not on the
  matching CRL. The outgoing context presents the gateway's own certificate and checks the peer's
  chain and host name; the certificate is checked against the configuration as well.
* the **message log**: the node's audit chain ``message-log``, fed through a **journal**.
  ``log_now`` (``log``) prepares the records (canonical data, checks) and appends them to
  the node's journal file (``message-log.journal``, one JSON line each, all of a call's in
  one ``write``) before it returns, so a message is answered only once its records are
  logged: written to a file of the node with the durability of the database's own commits
  (SQLite's write-ahead log with ``synchronous=NORMAL`` does not sync each commit either).
  The records reach the chain moments later (``WRITE_DELAY_SECONDS`` after the first of a
  batch), many calls' in one transaction (``audit.write_prepared``), and the journal is then
  emptied: on SQLite on the event loop itself (a thread and its GIL hand-offs cost the
  gateways more), on other databases by a thread of its own fed by a queue, so the loop
  never waits on the database's round trips. Why: while a call waited for its commit (the
  group commit of sessions 1-6), the calls travelled as one convoy between the two gateways
  and the machine stood a third idle (docs/exchange.md, Ninth pass). A failed write to the
  chain is logged and tried again (``WRITE_RETRY_SECONDS``); the records stay journalled.
  At start (``open_journal``, by ``jisr.exchange.server``) what a stopped process journalled
  and did not write goes to the chain, and the journal is locked: one process serves a node
  (a second is refused, ``GatewayBusy``). Readers that must see everything acknowledged
  wait for the journal to empty (``wait_written``: the CLI's ``log verify`` and ``export``).
  A record's replay-guard row (client, message id) is inserted in the transaction of its
  record. Records written to the chain directly (pub/sub's, in the transaction of what they
  record) come after what the call journalled before (``flush``). On SQLite the log's
  commits never checkpoint the write-ahead log; a thread of the gateway does
  (``checkpoint``), off the loop.
* the **replay guard** (``first_sight``): the ids received within the replay window, in
  memory, so a replay is refused before anything is forwarded; each id's row is committed
  with its request's record, and at start the window's rows are read back
  (``load_recent``, after the journal's records are written), so a replay is refused
  after a restart too. The table has no unique
  key on the ids: on random ids such a key put one random B-tree leaf into every call's
  commit (a six-call commit at 700,000 ids: 60-77 -> 46-53 us CPU per call without it;
  docs/exchange.md, Seventh pass); one gateway process serves a node, so its memory sees
  every id the node receives.

Bodies kept in the log may be encrypted at rest (``body_fields``, ``read_body``), and the
writer prunes the replay guard's old rows (``prune_seen``).

The signing key, the checkpoint signer and successful certificate checks are kept in memory
(a check for at most ``CERTIFICATE_CHECK_SECONDS``, never past the certificate's expiry, and
per configuration version, so a new CRL applies at once).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import fcntl
import os
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson
import sqlalchemy as sa
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding

from jisr.core.audit import AuditRecord, format_timestamp
from jisr.core.audit import service as audit
from jisr.core.clock import utcnow
from jisr.core.crypto import ca, jws, keystore
from jisr.core.db import sqlite_datetime_text
from jisr.core.errors import CertificateRefused, CryptoError, InvalidInput
from jisr.core.i18n import _
from jisr.core.instance import Instance, Node
from jisr.core.logging import get_logger
from jisr.core.settings import Settings
from jisr.exchange import globalconf
from jisr.exchange.errors import GatewayBusy, GlobalConfRefused
from jisr.exchange.identifiers import MemberId
from jisr.exchange.models import SeenMessage
from jisr.exchange.provisioning import files_of

MESSAGE_LOG = "message-log"
CERTIFICATE_CHECK_SECONDS = 30.0
WRITER_IDLE_SECONDS = 10.0  # the message-log writer thread ends after this long without work
# The writer prunes the replay guard's table in chunks, each its own short transaction (on
# SQLite, on the loop): one DELETE of a minute's rows at 1,200 calls/s (72,000 rows) held the
# loop for about 55 ms, every call in flight with it.
PRUNE_EVERY_SECONDS = 1.0  # how often the writer looks for rows past the window
PRUNE_CHUNK_ROWS = 500  # at most this many rows in one pruning transaction (about 1 ms)
PRUNE_AGAIN_SECONDS = 0.05  # after a full chunk, the next one is due this soon
JOURNAL_FILE = "message-log.journal"  # in the node's directory
# The journal's records go to the chain this long after the first of them (on SQLite in one
# transaction on the loop): about 24 calls' records a commit at 1,200 calls/s.
WRITE_DELAY_SECONDS = 0.02
WRITE_RETRY_SECONDS = 1.0  # after a failed write to the chain (logged)
FLUSH_POLL_SECONDS = 0.001  # ``flush`` with the writer thread: how often it looks
JOURNAL_WAIT_SECONDS = 2.0  # how long the log's readers (CLI) wait for a journal to empty
RECOVERY_WINDOW = 100_000  # at start, a journal's records are looked for among this many more
CHECKPOINT_EVERY_SECONDS = 0.5  # SQLite: how often the checkpointer thread looks at the WAL
_SHA256 = SHA256()
log = get_logger("jisr.exchange")


@dataclass(slots=True)
class _Pending:
    """A journalled record waiting for its write to the chain."""

    prepared: audit.Prepared
    seen: tuple[str, str] | None  # (client, message id) for the replay guard
    line: bytes  # its journal line


@dataclass(frozen=True)
class LogRecord:
    """One message-log record to write (``GatewayRuntime.log_now``)."""

    event: str
    data: dict[str, Any]
    actor: str | None = None
    subject: str | None = None
    seen: tuple[str, str] | None = None


class GatewayRuntime:
    """Everything both listeners of one gateway node share."""

    def __init__(self, instance: Instance, node_name: str, *, registry_url: str | None = None):
        self.instance = instance
        self.node: Node = instance.node(node_name)
        self.settings = instance.settings
        self.files = files_of(self.node)
        anchor = self.files.read_anchor()
        self.name: str = anchor["gateway"]
        self.member = MemberId.parse(anchor["member"])
        self.instance_code: str = anchor["instance"]
        self.anchor_jwks: dict[str, Any] = anchor["jwks"]
        self.registry_url = (
            registry_url or anchor.get("registry_url") or self.settings.exchange_registry_url
        ).rstrip("/")
        self.ca_pem = self.files.ca.read_bytes()
        self._passphrase = self.settings.keystore_passphrase.get_secret_value()
        self.server_ssl = self._context(ssl.Purpose.CLIENT_AUTH, self._passphrase)
        self._peer_contexts: dict[str, ssl.SSLContext] = {}
        self._service_context: ssl.SSLContext | None = None
        self.tls_certificate = ca.load_certificate(self.files.tls_certificate.read_bytes())
        with self.node.session() as session:
            self.signing_key = keystore.active_key(session, self.node.keys, purpose="signing")
        self.checkpoint_signer = jws.JwsSigner(self.signing_key)
        self._checked: dict[tuple[bytes, str, str, int], dt.datetime] = {}
        self._trusted_cas: set[bytes] = set()  # federated instances' CAs added to server_ssl
        self._body_key = AESGCM(_derive_body_key(self._passphrase, self.node.name))
        self._next_prune = 0.0  # monotonic time of the next replay-table pruning
        self._fingerprints: dict[int, tuple[x509.Certificate, bytes]] = {}
        self._pending: list[_Pending] = []  # journalled, not yet in the chain (in order)
        self._journal_fd: int | None = None  # ``open_journal``
        self._journal_bytes = 0  # the journal's size (this process alone writes it)
        self._index_handle: asyncio.TimerHandle | None = None  # the next ``_write_batch``
        self._writer_ok = True  # the writer thread's last batch was written
        self._journalled = 0  # records journalled by this process (``flush``)
        self._written_count = 0  # ... and written to the chain since
        self._write_failed = False  # the last write to the chain failed (retried later)
        # ``close`` ran: no write to the chain starts any more (a writer thread started by a
        # late timer would open the node's engine again after the instance closed it, and
        # that engine's connections would never be closed)
        self._closed = False
        # SQLite (a local file, a batch commits in about 0.2 ms CPU): written on the loop's
        # thread; other databases (network round trips): by the writer thread.
        self._inline = self.node.engine.dialect.name == "sqlite"
        self._writing = False  # a batch is with the writer thread (touched on the loop only)
        # (client, message id) -> monotonic time, oldest first: the replay guard
        # (``first_sight``), with the window's ids of the guard's table (``load_recent``).
        self._recent: dict[tuple[str, str], float] = {}
        self._held: sa.Connection | None = None  # the message log's connection
        self._checkpointer: threading.Thread | None = None  # SQLite: see ``_raw_log_connection``
        self._closing = threading.Event()
        # Batches for the writer thread; None asks it to end (``close``).
        self._batches: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, list[_Pending]] | None
        ] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._conf: globalconf.GlobalConf | None = None
        self.last_refresh_error: str | None = None
        self._load_cached()
        self.load_recent()  # the replay guard's ids of the window, before any call

    def _context(self, purpose: ssl.Purpose, passphrase: str) -> ssl.SSLContext:
        context = ssl.create_default_context(purpose, cafile=str(self.files.ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(
            str(self.files.tls_certificate), str(self.files.tls_key), password=passphrase
        )
        if purpose is ssl.Purpose.CLIENT_AUTH:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def peer_context(self, peer: globalconf.PeerGateway) -> ssl.SSLContext:
        """An outgoing TLS context that accepts exactly ``peer``'s listed TLS certificate
        (pinned as the only trust anchor, chain and revocation checked beforehand against
        the configuration), presenting this gateway's own certificate."""
        der = peer.tls_der
        key = self._fingerprint(peer.tls_certificate).hex()
        context = self._peer_contexts.get(key)
        if context is None:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            context.load_verify_locations(cadata=der)
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(
                str(self.files.tls_certificate), str(self.files.tls_key), password=self._passphrase
            )
            self._peer_contexts[key] = context
        return context

    def service_context(self) -> ssl.SSLContext:
        """The TLS context for provider systems served over https (the system's trust store)."""
        if self._service_context is None:
            self._service_context = ssl.create_default_context()
        return self._service_context

    # --- configuration -----------------------------------------------------------------------

    def _verify(self, token: str, *, newer_than: int = 0) -> globalconf.GlobalConf:
        return globalconf.verify(
            token,
            jwks=self.anchor_jwks,
            instance=self.instance_code,
            ca_pem=self.ca_pem,
            newer_than=newer_than,
        )

    def _load_cached(self) -> None:
        with self.node.session() as session:
            token = globalconf.latest_cached_token(session)
        if token is None:
            return
        try:
            self._conf = self._verify(token)
        except GlobalConfRefused as refused:
            log.warning("globalconf.cached-refused", gateway=self.name, reason=refused.detail)
            return
        self._trust_federated(self._conf)

    def _trust_federated(self, conf: globalconf.GlobalConf) -> None:
        """Let the peer listener's TLS handshake accept certificates of the CAs of the
        instances ``conf`` federates with (their shared parameters, verified against the
        agreement's pinned key). Only ever added: a CA whose federation has ended still
        passes the handshake, and the request is refused (and logged) at the HTTP level,
        where every sender is looked up in the configuration in force."""
        for federated in conf.federations.values():
            der = federated.peer.ca_certificate.public_bytes(Encoding.DER)
            if der not in self._trusted_cas:
                self.server_ssl.load_verify_locations(cadata=der)
                self._trusted_cas.add(der)

    @property
    def conf(self) -> globalconf.GlobalConf | None:
        """The configuration held (perhaps expired)."""
        return self._conf

    def usable_conf(self) -> globalconf.GlobalConf | None:
        """The configuration to work with now, or None when there is none or it expired."""
        conf = self._conf
        if conf is None or conf.is_expired():
            return None
        return conf

    def accept(self, token: str) -> bool:
        """Verify and cache a downloaded configuration; True when it is a newer version."""
        held = self._conf.version if self._conf else 0
        conf = self._verify(token, newer_than=held)
        with self.node.session() as session:
            stored = globalconf.store_cached(session, conf)
            if stored:
                self.node.record(
                    session,
                    "exchange.globalconf.accepted",
                    {"version": conf.version, "expires_at": globalconf._iso(conf.expires_at)},
                )
        current = self._conf
        if (
            current is None
            or conf.version > current.version
            or conf.expires_at > (current.expires_at)
        ):
            self._trust_federated(conf)
            self._conf = conf
        return stored

    async def refresh(self, http: aiohttp.ClientSession) -> bool:
        """Download, verify and cache the global configuration; False when that failed."""
        url = f"{self.registry_url}/exchange/globalconf"
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    raise GlobalConfRefused(f"the registry answered {response.status}")
                token = (await response.read()).decode("ascii")
            await asyncio.to_thread(self.accept, token)
        except (aiohttp.ClientError, TimeoutError, OSError, UnicodeDecodeError) as error:
            self.last_refresh_error = f"registry unreachable: {error!r}"
        except GlobalConfRefused as refused:
            self.last_refresh_error = refused.detail
        else:
            self.last_refresh_error = None
            return True
        log.warning("globalconf.refresh-failed", gateway=self.name, reason=self.last_refresh_error)
        return False

    # --- certificates ------------------------------------------------------------------------

    def check_certificate(
        self, certificate: x509.Certificate, usage: ca.CertificateUsage, conf: globalconf.GlobalConf
    ) -> None:
        """Chain, validity, revocation (the configuration's CRL) and usage; else refused.
        A success is remembered (see the module docstring); a refusal never is."""
        now = utcnow()
        key = (self._fingerprint(certificate), str(usage), conf.instance, conf.version)
        until = self._checked.get(key)
        if until is not None and now < until:
            return
        ca.validate_certificate(certificate, ca_cert=conf.ca_certificate, crl=conf.crl, usage=usage)
        if len(self._checked) > 1024:
            self._checked.clear()
        self._checked[key] = min(
            now + dt.timedelta(seconds=CERTIFICATE_CHECK_SECONDS),
            certificate.not_valid_after_utc,
            conf.expires_at,
        )

    def _fingerprint(self, certificate: x509.Certificate) -> bytes:
        """SHA-256 of the certificate, remembered per certificate object: the configuration's
        certificates are parsed once per version, and hashing them at every check showed in
        py-spy (3–4 % of a gateway's CPU). The object is held with its digest, so an id is
        never reused for another certificate while its entry lives."""
        held = self._fingerprints.get(id(certificate))
        if held is not None and held[0] is certificate:
            return held[1]
        digest = certificate.fingerprint(_SHA256)
        if len(self._fingerprints) > 1024:
            self._fingerprints.clear()
        self._fingerprints[id(certificate)] = (certificate, digest)
        return digest

    def first_sight(self, client: str, message_id: str) -> bool:
        """False when this gateway received message ``message_id`` of ``client`` within the
        replay window (since it started, or before: ``load_recent``); otherwise remembers it
        and returns True. The server proxy asks before anything is forwarded; the id's row
        (``log(seen=…)``) is committed with the request's record."""
        key = (client, message_id)
        if key in self._recent:
            return False
        now = time.monotonic()
        self._recent[key] = now
        if len(self._recent) % 1024 == 0:  # forget what is older than the window
            horizon = now - 2 * self.settings.exchange_max_clock_skew_seconds
            while self._recent:
                oldest = next(iter(self._recent.items()))
                if oldest[1] >= horizon:
                    break
                del self._recent[oldest[0]]
        return True

    def load_recent(self) -> int:
        """Add the replay guard's rows of the window (twice the clock skew) to the memory
        ``first_sight`` asks, oldest first: at start, so an id received before a restart is
        still refused after it. Returns how many ids the memory holds."""
        now, clock = utcnow(), time.monotonic()
        cutoff = now - dt.timedelta(seconds=2 * self.settings.exchange_max_clock_skew_seconds)
        loaded: dict[tuple[str, str], float] = {}
        with self.node.engine.connect() as connection:
            if self._inline:
                # SQLite: the driver's rows, times parsed from the stored text (SQLAlchemy's
                # rows and processors cost about 4 us per id: a million took 4 s at start)
                naive_now = now.astimezone(dt.UTC).replace(tzinfo=None)
                raw = connection.connection.driver_connection
                assert raw is not None
                rows = raw.execute(_RAW_SELECT_SEEN, (sqlite_datetime_text(cutoff),))
                for client, message_id, stamp in rows:
                    if (client, message_id) not in loaded:
                        age = naive_now - dt.datetime.fromisoformat(stamp)
                        loaded[client, message_id] = clock - age.total_seconds()
            else:
                query = (
                    sa.select(_SEEN.c.client, _SEEN.c.message_id, _SEEN.c.seen_at)
                    .where(_SEEN.c.seen_at >= cutoff)
                    .order_by(_SEEN.c.seen_at, _SEEN.c.id)
                )
                for client, message_id, seen_at in connection.execute(query):
                    if (client, message_id) not in loaded:
                        loaded[client, message_id] = clock - (now - seen_at).total_seconds()
        loaded.update(self._recent)  # what this process saw itself stays, after them
        self._recent = loaded
        return len(loaded)

    @staticmethod
    def refusal_reason(refused: CertificateRefused) -> str:
        return str(refused.params.get("reason", "refused"))

    # --- message log -------------------------------------------------------------------------

    def body_fields(self, body: bytes, context: str = "") -> dict[str, Any]:
        """What a record keeps of a message body: nothing (the signed envelope holds its
        digest), the body (``exchange_log_bodies``), or the body encrypted
        (``exchange_log_encrypt_bodies``): AES-256-GCM, a random 96-bit nonce, the record's
        ``context`` (event and message id) as associated data, stored as
        ``body_aesgcm`` = base64(nonce ‖ ciphertext ‖ tag)."""
        if not (self.settings.exchange_log_bodies and body):
            return {}
        if self.settings.exchange_log_encrypt_bodies:
            nonce = os.urandom(12)
            sealed = self._body_key.encrypt(nonce, body, context.encode("utf-8"))
            return {"body_aesgcm": base64.b64encode(nonce + sealed).decode("ascii")}
        return {"body": base64.b64encode(body).decode("ascii")}

    def read_body(self, data: dict[str, Any], context: str = "") -> bytes | None:
        """The body a record keeps (decrypted), or None; ``CryptoError`` when the encrypted
        form does not open with this gateway's key and ``context``."""
        if "body" in data:
            return base64.b64decode(str(data["body"]))
        if "body_aesgcm" not in data:
            return None
        sealed = base64.b64decode(str(data["body_aesgcm"]))
        try:
            return self._body_key.decrypt(sealed[:12], sealed[12:], context.encode("utf-8"))
        except InvalidTag as error:
            raise CryptoError("the logged body does not decrypt (another key or record)") from error

    def _append(self, batch: list[_Pending]) -> None:
        """One transaction for the whole batch, the replay guard's rows first. No ORM
        session: nothing here needs one. On SQLite (on the loop) the transaction, the replay
        guard's rows and the records go to the driver's connection directly
        (``audit.write_prepared`` takes it): SQLAlchemy's connection and context managers
        around them were half of a one-record commit's CPU (175 us in the gateway, against
        about 40 us for the statements in a micro-benchmark of SQLite alone). Other
        databases: SQLAlchemy's transaction, on a connection from the pool (in the writer
        thread)."""
        prepared = [item.prepared for item in batch]
        every = self.settings.audit_checkpoint_every
        if not self._inline:
            with self.node.engine.connect() as connection, connection.begin():
                _remember(connection, batch)
                audit.write_prepared(
                    connection,
                    MESSAGE_LOG,
                    prepared,
                    signer=self.checkpoint_signer,
                    checkpoint_every=every,
                )
            return
        raw = self._raw_log_connection()
        raw.execute("BEGIN IMMEDIATE")
        try:
            _remember_sqlite(raw, batch)
            audit.write_prepared(
                raw, MESSAGE_LOG, prepared, signer=self.checkpoint_signer, checkpoint_every=every
            )
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise

    def _raw_log_connection(self) -> Any:
        """SQLite: the driver's connection the log writes on, held between batches (taking
        one from the pool and giving it back, a rollback, for every batch made a one-record
        batch cost 0.21 ms CPU against 0.15 ms); a new one after it broke. Its commits never
        checkpoint the write-ahead log: a checkpoint syncs the file to disk, and on the loop
        that stalled every call for milliseconds a few times a second (p99 6.4-7.5 ->
        3.4-3.7 ms in benchmarks/exchange_overhead.py without it). The checkpointer thread
        does it, without blocking the loop."""
        held = self._held
        if held is None or held.closed or held.invalidated:
            held = self._held = self.node.engine.connect()
            raw = held.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA wal_autocheckpoint=0")
            self._start_checkpointer()
        return held.connection.driver_connection

    def _start_checkpointer(self) -> None:
        if self._checkpointer is None or not self._checkpointer.is_alive():
            self._closing.clear()
            self._checkpointer = threading.Thread(
                target=self._checkpoint_forever, name=f"wal-checkpoint-{self.name}", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_forever(self) -> None:
        while not self._closing.wait(CHECKPOINT_EVERY_SECONDS):
            try:
                self.checkpoint()
            except Exception as error:  # never stops the log; tried again later
                log.warning("message-log.checkpoint-failed", gateway=self.name, error=repr(error))

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the write-ahead log's committed pages into the database (SQLite, PASSIVE:
        writers go on meanwhile); (busy, pages in the log, pages copied) as SQLite reports."""
        with self.node.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            busy, pages, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(pages), int(copied)

    def close(self) -> None:
        """Write what the journal holds to the chain, close the journal (its lock goes with
        it), give the log's connection back, and stop the checkpointer and the writer
        thread once it has written what it was given (``jisr.exchange.server`` calls this at
        the end, when no handler is left to log): a connection the writer held while the
        node's engine was disposed went back to the disposed pool and was never closed."""
        self._closed = True  # nothing is written to the chain after this but what it writes
        if self._index_handle is not None:
            self._index_handle.cancel()
            self._index_handle = None
        with self._writer_lock:
            writer = self._writer
            if writer is not None:
                self._batches.put(None)
        if writer is not None:
            writer.join(timeout=10)
        if self._journal_fd is not None:
            batch, self._pending = self._pending, []
            if (not batch or self._commit(batch)) and self._writer_ok:
                os.ftruncate(self._journal_fd, 0)
            # else the journal keeps them: the next start writes what the chain lacks
            os.close(self._journal_fd)  # and its lock
            self._journal_fd = None
        self._closing.set()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.join(timeout=10)
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def _commit(self, batch: list[_Pending]) -> bool:
        """Write ``batch`` to the chain in one transaction; False (logged) when that failed:
        its records stay in the journal and are tried again (``_failed``)."""
        try:
            self._append(batch)
        except Exception as error:
            log.warning(
                "message-log.write-failed", gateway=self.name, records=len(batch), error=repr(error)
            )
            return False
        return True

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give everything waiting to the writer thread as one batch (on the loop)."""
        batch, self._pending = self._pending, []
        self._writing = True
        with self._writer_lock:
            self._batches.put((loop, batch))
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._writer_loop, name=f"message-log-{self.name}", daemon=True
                )
                self._writer.start()

    def _writer_loop(self) -> None:
        # A thread of our own instead of ``asyncio.to_thread``: the executor's hand-off cost
        # 35-43 us CPU per batch against 17 us for a queue and ``call_soon_threadsafe``
        # (measured in isolation), and ``ThreadPoolExecutor.submit`` was the largest self
        # time of both gateways in py-spy (5-6 %). It ends after a while without work.
        while True:
            try:
                item = self._batches.get(timeout=WRITER_IDLE_SECONDS)
            except queue.Empty:
                with self._writer_lock:
                    if self._batches.empty():
                        self._writer = None
                        return
                continue
            if item is None:  # ``close``: what came before is written
                with self._writer_lock:
                    self._writer = None
                return
            loop, batch = item
            written = self._writer_ok = self._commit(batch)
            try:
                loop.call_soon_threadsafe(self._written, loop, batch, written)
            except RuntimeError:  # the loop is closed: ``close`` sees ``_writer_ok``
                pass
            self._prune_now_and_then()

    def _prune_now_and_then(self) -> None:
        """After a commit: prune one chunk of the replay guard's table when it is due (every
        ``PRUNE_EVERY_SECONDS``; ``PRUNE_AGAIN_SECONDS`` after a full chunk, so a backlog
        goes at up to 10,000 rows a second, in transactions of about a millisecond: 500 rows
        took 1 ms, 72,000 at once 55 ms)."""
        started = time.monotonic()
        if started < self._next_prune:
            return
        self._next_prune = started + PRUNE_EVERY_SECONDS
        try:
            pruned = self.prune_seen(limit=PRUNE_CHUNK_ROWS)
        except Exception as error:  # never stops the log; tried again later
            log.warning("replay-guard.prune-failed", gateway=self.name, error=repr(error))
            return
        if pruned >= PRUNE_CHUNK_ROWS:
            self._next_prune = started + PRUNE_AGAIN_SECONDS

    def prune_seen(self, now: dt.datetime | None = None, *, limit: int | None = None) -> int:
        """Delete the replay guard's message ids older than twice the clock-skew window:
        a replay of such a message is refused by its signed time anyway (it was at most
        ``skew`` early when first seen, and is accepted at most ``skew`` late). With
        ``limit``, only that many of the oldest (the writer's chunks, see
        ``_prune_now_and_then``); returns the rows deleted."""
        window = dt.timedelta(seconds=2 * self.settings.exchange_max_clock_skew_seconds)
        cutoff = (now or utcnow()) - window
        with self.node.session() as session:
            connection = session.connection()
            if limit is not None:  # up to the limit-th oldest time (its ties too): one range
                bound = connection.execute(
                    sa.select(_SEEN.c.seen_at)
                    .where(_SEEN.c.seen_at < cutoff)
                    .order_by(_SEEN.c.seen_at)
                    .offset(max(0, limit - 1))
                    .limit(1)
                ).scalar()
                if bound is not None:
                    cutoff = min(cutoff, bound + dt.timedelta(microseconds=1))
            result = connection.execute(sa.delete(_SEEN).where(_SEEN.c.seen_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    # --- the journal ---------------------------------------------------------------------

    @property
    def journal_path(self) -> Path:
        return journal_path(self.settings, self.node.name)

    def open_journal(self) -> int:
        """Open the message log's journal for this gateway process, the only one that may
        serve the node (the journal is locked; a second one is refused with
        ``GatewayBusy``); first write to the chain what a previous process journalled and
        did not write (it stopped abruptly). Returns how many records that was. Called by
        ``jisr.exchange.server`` before it serves; ``log_now`` refuses to log before."""
        if self._journal_fd is not None:
            return 0
        path = self.journal_path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GatewayBusy(
                _(
                    "Another process already serves gateway node {gateway} (its message-log "
                    "journal is locked); one process serves a node: stop it first."
                ),
                gateway=self.node.name,
            ) from None
        try:
            recovered = self._recover(fd)
        except BaseException:
            os.close(fd)
            raise
        self._journal_fd = fd
        if recovered:
            self.load_recent()  # their replay-guard rows too
        return recovered

    def _recover(self, fd: int) -> int:
        """Write to the chain the journal's records it does not hold yet, in their order,
        then empty the journal. A record the chain holds is one among its newest with the
        same time, event and data (records reach the chain in journal order, so only a
        batch written just before a stop can be in both)."""
        size = os.fstat(fd).st_size
        if not size:
            return 0
        items = []
        for line in os.pread(fd, size, 0).split(b"\n"):
            item = _from_journal(line)
            if item is not None:
                items.append(item)
            elif line:  # a line cut short by a stop mid-write: it was never acknowledged
                log.warning("message-log.journal-line-skipped", gateway=self.name, bytes=len(line))
        earliest = min((item.prepared[1] for item in items), default=None)
        held = self._chain_tail(earliest, len(items) + RECOVERY_WINDOW) if earliest else set()
        missing = [
            item
            for item in items
            if (format_timestamp(item.prepared[1]), item.prepared[0].event, item.prepared[2])
            not in held
        ]
        if missing:
            self._append(missing)  # raises: the journal stays, the gateway does not start
        os.ftruncate(fd, 0)
        log.info(
            "message-log.journal-recovered",
            gateway=self.name,
            journalled=len(items),
            written=len(missing),
        )
        return len(missing)

    def _chain_tail(self, earliest: dt.datetime, count: int) -> set[tuple[str, str, str]]:
        """(time, event, data) of the chain's newest records, newest first, until one is
        older than ``earliest`` by a minute (the journal's records were written to the chain
        within moments of their time) or ``count`` were read."""
        records = cast(sa.Table, AuditRecord.__table__)
        horizon = earliest - dt.timedelta(seconds=60)
        held: set[tuple[str, str, str]] = set()
        query = (
            sa.select(records.c.created_at, records.c.event, records.c.data)
            .where(records.c.chain == MESSAGE_LOG)
            .order_by(records.c.seq.desc())
            .limit(count)
        )
        with self.node.engine.connect() as connection:
            for at, event, data in connection.execution_options(yield_per=500).execute(query):
                if at < horizon:
                    break
                held.add((format_timestamp(at), event, data))
        return held

    def _journal(self, data: bytes) -> None:
        fd = self._journal_fd
        if fd is None:
            raise RuntimeError(f"the message log of {self.name} is not open (open_journal)")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            # Not written, not acknowledged: cut what went in, so the next line does not
            # join a half one (best effort: the disk may refuse that too).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._journal_bytes)
            raise
        self._journal_bytes += len(data)

    def _keep_in_journal(self, items: list[_Pending]) -> None:
        """After a write to the chain: the journal keeps ``items`` only (those queued
        meanwhile, with the writer thread; on SQLite none: the write ran on the loop)."""
        fd = self._journal_fd
        if fd is None:
            return
        if not items:
            os.ftruncate(fd, 0)
            self._journal_bytes = 0
            return
        # Rewritten beside and renamed over: a stop at any moment leaves the old journal
        # or the new one, and the next start skips what the chain holds.
        path = self.journal_path
        spare = path.with_name(path.name + ".new")
        new = os.open(spare, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        fcntl.flock(new, fcntl.LOCK_EX | fcntl.LOCK_NB)
        kept = b"".join(item.line for item in items)
        os.write(new, kept)
        os.replace(spare, path)
        os.close(fd)
        self._journal_fd, self._journal_bytes = new, len(kept)

    # --- logging -------------------------------------------------------------------------

    def _written(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Pending], written: bool
    ) -> None:
        """The writer thread wrote ``batch`` (on the loop): the journal drops it."""
        self._writing = False
        if not written:
            self._failed(loop, batch)
            return
        self._write_failed = False
        self._written_count += len(batch)
        self._keep_in_journal(self._pending)
        if self._pending:
            self._kick()

    def _failed(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        """A write to the chain failed (logged): its records stay first in line, in the
        journal too, and go again in ``WRITE_RETRY_SECONDS``."""
        self._write_failed = True
        self._pending[:0] = batch
        if self._index_handle is None and not self._closed:
            self._index_handle = loop.call_later(WRITE_RETRY_SECONDS, self._write_batch)

    async def log(
        self,
        event: str,
        data: dict[str, Any],
        *,
        actor: str | None = None,
        subject: str | None = None,
        seen: tuple[str, str] | None = None,
    ) -> None:
        """Append one record to the message log (``log_now``). ``seen`` (client, message
        id) is the replay guard's row, written in the record's transaction
        (``first_sight`` decides a replay)."""
        self.log_now(LogRecord(event, data, actor, subject, seen))

    def log_now(self, *records: LogRecord) -> None:
        """Append ``records`` to the message log, in this order, all or none: once this
        returns they are in the journal (one write), so a message answered after it is
        logged; they reach the hash chain moments later (``_write_batch``), off the calls'
        path. Raises ``InvalidInput`` (a record that cannot be logged) or ``OSError`` (the
        journal cannot be written; the caller's message must then not go on)."""
        now = utcnow()
        at = now.isoformat()
        items = []
        for record in records:
            prepared = audit.prepare(
                audit.AuditEntry(
                    event=record.event,
                    data=record.data,
                    actor=_clip(record.actor),
                    subject=_clip(record.subject),
                ),
                now,
            )
            items.append(_Pending(prepared, record.seen, journal_line(prepared, at, record.seen)))
        self._journal(items[0].line if len(items) == 1 else b"".join(i.line for i in items))
        self._pending.extend(items)
        self._journalled += len(items)
        self._kick()

    async def flush(self) -> None:
        """Write what is journalled to the chain now: before a record written to the chain
        directly (pub/sub's, in its own transactions) that must come after it. Raises
        ``RuntimeError`` when the write failed (the records stay journalled)."""
        target = self._journalled  # what was journalled before this call
        while self._written_count < target:
            if self._closed:
                raise RuntimeError(f"the message log of {self.name} is closed")
            if not self._writing:
                if self._index_handle is not None:
                    self._index_handle.cancel()
                    self._index_handle = None
                self._write_batch()  # on SQLite written now; else handed to the writer
            else:
                await asyncio.sleep(FLUSH_POLL_SECONDS)  # the writer thread's turn
            if self._write_failed:
                raise RuntimeError(f"the message log of {self.name} cannot be written now")

    def _kick(self) -> None:
        """Schedule a write of what is queued to the chain, unless one is (it takes the
        rest)."""
        if self._index_handle is None and not self._writing and not self._closed:
            loop = asyncio.get_running_loop()
            self._index_handle = loop.call_later(WRITE_DELAY_SECONDS, self._write_batch)

    def _write_batch(self) -> None:
        """Write everything queued to the chain in one transaction (on SQLite on the loop's
        thread, see the module docstring; else by the writer thread), then empty the
        journal; on failure keep it all and try again later."""
        self._index_handle = None
        if not self._pending or self._writing or self._closed:
            return
        loop = asyncio.get_running_loop()
        if not self._inline:
            self._hand_over(loop)
            return
        batch, self._pending = self._pending, []
        if self._commit(batch):
            self._write_failed = False
            self._written_count += len(batch)
            self._keep_in_journal(self._pending)  # nothing arrived meanwhile: emptied
        else:
            self._failed(loop, batch)
        self._prune_now_and_then()


def journal_path(settings: Settings, node: str) -> Path:
    """The message log's journal of gateway node ``node``: records acknowledged and not
    yet written to the chain, one JSON line each."""
    return settings.node_dir(node) / JOURNAL_FILE


def journal_line(prepared: audit.Prepared, at: str, seen: tuple[str, str] | None) -> bytes:
    """One record's journal line: JSON ``[time, event, actor, subject, data, seen]``."""
    entry, _, text = prepared
    return orjson.dumps([at, entry.event, entry.actor, entry.subject, text, seen]) + b"\n"


def wait_written(settings: Settings, node: str, timeout: float = 10.0) -> bool:
    """Wait until every record the gateway ``node`` has acknowledged is in its hash chain
    (its journal is empty), for readers of the chain while it serves; False on time-out."""
    path = journal_path(settings, node)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if path.stat().st_size == 0:
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _from_journal(line: bytes) -> _Pending | None:
    """A journal line back as the record it was; None for a line that is not one."""
    if not line:
        return None
    try:
        at_text, event, actor, subject, text, seen = orjson.loads(line)
        at = dt.datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(text, str):
            return None
        entry = audit.AuditEntry(event=event, actor=actor, subject=subject)
        prepared = audit.prepare(entry, at)  # checks the texts (the data is {} here)
    except (orjson.JSONDecodeError, ValueError, TypeError, InvalidInput):
        return None
    pair = (str(seen[0]), str(seen[1])) if isinstance(seen, list) and len(seen) == 2 else None
    return _Pending((prepared[0], prepared[1], text), pair, line + b"\n")


_SEEN = cast(sa.Table, SeenMessage.__table__)
_INSERT_SEEN = sa.insert(_SEEN)


def _seen_rows(batch: list[_Pending]) -> list[tuple[str, str]]:
    return [item.seen for item in batch if item.seen is not None]


def _remember(connection: sa.Connection, batch: list[_Pending]) -> None:
    """The replay guard's rows: one multi-row INSERT of the batch's (client, id) pairs. Core
    on the connection, not the ORM: one ORM insert per record cost 0.5 ms CPU at a batch of
    one (measured with a micro-benchmark of ``_append``, guard and log write together: 1.48
    -> 0.50 ms CPU per record at a batch of one, 0.38 -> 0.13 ms at a batch of 8)."""
    now = utcnow()
    rows = [{"client": c, "message_id": m, "seen_at": now} for c, m in _seen_rows(batch)]
    if rows:
        connection.execute(_INSERT_SEEN, rows)


def _remember_sqlite(raw: Any, batch: list[_Pending]) -> None:
    """``_remember`` on SQLite's own connection (the message log's statements go there too)."""
    pairs = _seen_rows(batch)
    if pairs:
        stamp = sqlite_datetime_text(utcnow())
        raw.executemany(_RAW_INSERT_SEEN, [(client, message, stamp) for client, message in pairs])


_RAW_SELECT_SEEN = (
    "SELECT client, message_id, seen_at FROM exchange_seen_messages WHERE seen_at >= ? "
    "ORDER BY seen_at, id"
)
_RAW_INSERT_SEEN = (
    "INSERT INTO exchange_seen_messages (client, message_id, seen_at) VALUES (?, ?, ?)"
)


def _derive_body_key(passphrase: str, node_name: str) -> bytes:
    """The message-log body key: HKDF-SHA256 of the node's keystore passphrase (its
    secret, ``secrets.toml``), bound to the node's name."""
    return HKDF(
        algorithm=SHA256(), length=32, salt=b"jisr message-log bodies v1", info=node_name.encode()
    ).derive(passphrase.encode("utf-8"))


def _clip(value: str | None) -> str | None:
    return value[:255] if value else None


__all__ = ["MESSAGE_LOG", "GatewayRuntime", "LogRecord"]
