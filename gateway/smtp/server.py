"""The SMTP protocol: aiosmtpd's ``SMTP`` with the gateway's protocol-level guards.

:class:`GatewaySMTP` is one connection. On top of aiosmtpd it adds what a
before-queue relay facing the internet needs (see research/gateway-anchors.md 7):

- connection limits in total and per client (421 4.7.0 at connect);
- a command timeout and a whole-DATA timeout answered with 421 4.4.2 (aiosmtpd
  just closes the socket);
- PIPELINING (RFC 2920) advertised and enforced: input may follow only MAIL,
  RCPT and RSET (and the end of DATA) before their reply; anything else sent
  ahead of a reply, or before the greeting when ``greet_pause`` is set, is bad
  pipelining (554 5.5.0, connection closed);
- a DATA reader with the smuggling defence and exact size/line limits
  (:mod:`gateway.smtp.data`);
- AUTH PLAIN/LOGIN verified against argon2 hashes in a thread;
- RFC 3463 enhanced status codes on aiosmtpd's own replies (ENHANCEDSTATUSCODES);
- graceful shutdown: idle sessions get 421 4.3.2 at once, sessions inside a
  transaction finish it, may QUIT, and otherwise get 421.

:class:`~gateway.smtp.listener.SmtpServer` owns the listening socket and the
live connections. Everything about envelopes and messages is the handler's job.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import contextlib
import inspect
import re
import secrets
import time
from base64 import b64decode
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AnyStr

import structlog
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, _AuthMechAttr, login_always_fail, syntax

from gateway.smtp import replies
from gateway.smtp.data import read_data
from gateway.smtp.limits import Refusal
from gateway.smtp.replies import Reply, with_enhanced_code
from gateway.smtp.session import GatewayEnvelope, GatewaySession

if TYPE_CHECKING:
    from gateway.smtp.listener import SmtpServer

log = structlog.get_logger("gateway.smtp")

#: RFC 2920 3.1: only these may be followed by more input before their reply
#: (the end of DATA too; it is checked in smtp_DATA).
PIPELINABLE = frozenset({"MAIL", "RCPT", "RSET"})
#: Seconds a session that finished its transaction during shutdown may take to QUIT.
DRAIN_LINGER = 1.0
#: Failed AUTH attempts before the connection is closed.
MAX_AUTH_FAILURES = 3

CommandMethod = Callable[[str | None], Awaitable[None]]

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9-]+"
#: ``<local@domain>`` with a dot-atom local part and a plain ASCII domain, then
#: the ESMTP parameters: what nearly every helpdesk sends in MAIL and RCPT.
_SIMPLE_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>[ \t]*+(?!\()(.*)", re.DOTALL)


def simple_path(arg: str) -> tuple[str, str] | None:
    """``(address, parameters)`` of a plain ``<local@domain> PARAMS`` argument, else None.

    Gives exactly what aiosmtpd's ``_getaddr`` gives for such arguments (a
    property test checks it) without the email package's general address
    grammar, which costs about 60 µs per call; anything else (quoted local
    parts, comments, source routes, non-ASCII) is left to aiosmtpd.
    """
    match = _SIMPLE_PATH.fullmatch(arg)
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True, slots=True)
class _DispatchNames:
    """The attribute names behind aiosmtpd's per-connection dispatch tables.

    aiosmtpd finds ``smtp_*`` commands, ``auth_*`` mechanisms and ``handle_*``
    hooks by walking the connection and the handler; they depend only on the two
    classes, so they are found once per pair.
    """

    commands: dict[str, str]  # SMTP verb -> method name
    auth: tuple[tuple[str, str, bool], ...]  # (mechanism, method name, defined on the server)
    hooks: tuple[tuple[str, str], ...]  # (hook name, method name on the handler)
    ehlo_hook_version: str | None

    @staticmethod
    def of(server: type, handler: type) -> _DispatchNames:
        """The names for connections of class ``server`` serving a ``handler`` (cached)."""
        names = _DISPATCH_NAMES.get((server, handler))
        if names is None:
            names = _DISPATCH_NAMES[(server, handler)] = _DispatchNames._find(server, handler)
        return names

    @staticmethod
    def _find(server: type, handler: type) -> _DispatchNames:
        auth: dict[str, tuple[str, str, bool]] = {}
        for owner in (server, handler):  # the handler's mechanisms win, as in aiosmtpd
            for name in dir(owner):
                if name.startswith("auth_"):
                    default = name.replace("auth_", "").replace("__", "-")
                    mechanism = getattr(getattr(owner, name), "__auth_mechanism_name__", default)
                    auth[mechanism] = (mechanism, name, owner is server)
        hooks = tuple((name.replace("handle_", ""), name) for name in dir(handler) if name.startswith("handle_"))
        version: str | None = None
        ehlo = getattr(handler, "handle_EHLO", None)
        if ehlo is not None:
            # aiosmtpd's deprecated 4-argument form is not supported here.
            if len(inspect.signature(ehlo).parameters) != 6:
                raise RuntimeError(
                    "the handler's handle_EHLO must take (self, server, session, envelope, hostname, responses)"
                )
            version = "new"
        commands = {name.replace("smtp_", ""): name for name in dir(server) if name.startswith("smtp_")}
        return _DispatchNames(commands, tuple(auth.values()), hooks, version)


_DISPATCH_NAMES: dict[tuple[type, type], _DispatchNames] = {}


class _GuardedCommand:
    """One command method behind :meth:`GatewaySMTP._run_command`'s guards.

    Attributes are read through to the method, so aiosmtpd's HELP still finds the
    ``@syntax`` text on it.
    """

    __slots__ = ("_connection", "_method", "_name")

    def __init__(self, connection: GatewaySMTP, name: str, method: CommandMethod) -> None:
        self._connection = connection
        self._name = name
        self._method = method

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._method, attribute)

    async def __call__(self, arg: str | None) -> None:
        await self._connection._run_command(self._name, self._method, arg)


class _GuardedCommands:
    """aiosmtpd's per-connection command table (``_smtp_methods``), guarded.

    aiosmtpd only calls ``get`` (dispatch, HELP) and ``items`` (HELP); a guarded
    method is made when a command is dispatched, rather than one wrapper per known
    command on every connection.
    """

    __slots__ = ("_connection", "_names")

    def __init__(self, connection: GatewaySMTP, names: dict[str, str]) -> None:
        self._connection = connection
        self._names = names

    def get(self, command: str, default: Any = None) -> Any:
        """The guarded method for ``command``, or ``default`` for an unknown command."""
        attribute = self._names.get(command)
        if attribute is None:
            return default
        return _GuardedCommand(self._connection, command, getattr(self._connection, attribute))

    def keys(self) -> Iterable[str]:
        """The command verbs."""
        return self._names.keys()

    def items(self) -> list[tuple[str, Any]]:
        """``(verb, method)`` pairs, for HELP."""
        return [(command, getattr(self._connection, attribute)) for command, attribute in self._names.items()]


class GatewaySMTP(SMTP):
    """One SMTP connection to the gateway."""

    def __init__(self, handler: Any, *, owner: SmtpServer, loop: asyncio.AbstractEventLoop) -> None:
        config = owner.config.server
        # aiosmtpd's own constructor walks every member of the connection and of the
        # handler (inspect.getmembers, dir) to build its dispatch tables, on every
        # connection: about a tenth of a one-message connection's CPU. The same
        # attributes are set here from tables built once per class (_DispatchNames);
        # tests/unit/smtp/test_server_init.py checks them against aiosmtpd's __init__
        # (aiosmtpd is pinned in pyproject.toml for this reason).
        self.line_length_limit = config.line_length_limit
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=loop,
        )
        self.__ident__ = "ESMTP"
        self.loop = loop
        self.event_handler = handler
        self.data_size_limit = config.max_message_size
        self.enable_SMTPUTF8 = config.smtputf8
        self._decode_data = False
        # Per connection: aiosmtpd keeps this dict on the class, where every EHLO of
        # every connection adds to the MAIL limit (see smtp_EHLO).
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self.hostname = config.hostname
        self.tls_context = owner.tls_context
        self.require_starttls = bool(owner.tls_context) and config.require_starttls
        self._timeout_duration = config.command_timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = True
        self._proxy_timeout = None
        self._authenticator = None
        self._auth_callback = login_always_fail
        self._auth_required = False
        names = _DispatchNames.of(type(self), type(handler))
        self._auth_methods = {
            mechanism: _AuthMechAttr(getattr(self if builtin else handler, attr), builtin)
            for mechanism, attr, builtin in names.auth
            if owner.directory.offers_auth or mechanism not in ("PLAIN", "LOGIN")
        }
        self._handle_hooks = {hook: getattr(handler, attr) for hook, attr in names.hooks}
        self._ehlo_hook_ver = names.ehlo_hook_version
        self._enforce_call_limit = False
        self._owner = owner
        self._conn_id = ""
        self._client = ""
        self._refusal: Refusal | None = None
        self._lost = False
        self._opened = time.monotonic()
        self._processing = False
        self._draining = False
        self._plain_replies = False
        self._ehlo_lines: list[bytes] | None = None
        self._auth_failures = 0
        # aiosmtpd declares a dict but only calls get() and items() on it.
        self._smtp_methods = _GuardedCommands(self, names.commands)  # type: ignore[assignment]

    # --- typed views of aiosmtpd state (methods: aiosmtpd's init inspects properties) ---

    def gsession(self) -> GatewaySession:
        """The current session (always ours: see :meth:`_create_session`)."""
        assert isinstance(self.session, GatewaySession)
        return self.session

    def genvelope(self) -> GatewayEnvelope:
        """The current transaction (always ours: see :meth:`_create_envelope`)."""
        assert isinstance(self.envelope, GatewayEnvelope)
        return self.envelope

    def _input_pending(self) -> bool:
        """Bytes already received beyond the line being handled (pipelined input)."""
        # StreamReader has no public peek; aiosmtpd itself uses _buffer.
        return bool(self._reader._buffer)  # type: ignore[attr-defined]

    def _end_transaction(self) -> None:
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    # --- aiosmtpd factories ------------------------------------------------------

    def _create_session(self) -> GatewaySession:
        return GatewaySession(self.loop, self._conn_id, self._client)

    def _create_envelope(self) -> GatewayEnvelope:
        return GatewayEnvelope()

    # --- connection lifecycle ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count and register a new connection (not the STARTTLS re-entry)."""
        starttls = self._original_transport is not None
        if not starttls:
            peer = transport.get_extra_info("peername")
            self._client = str(peer[0]) if peer else "unknown"
            self._conn_id = secrets.token_hex(4)
            self._refusal = self._owner.limiter.admit(self._client)
            self._owner.connections.add(self)
        super().connection_made(transport)
        # RFC 3207 4.2: STARTTLS discards what the session knew; the network-based
        # account is a property of the address, so it is derived again.
        self.gsession().account = self._owner.directory.by_address(self._client)

    def connection_lost(self, error: Exception | None) -> None:
        """Release the connection's limit slot and log its end, once."""
        if not self._lost:
            self._lost = True
            if self._refusal is None:
                self._owner.limiter.release(self._client)
                log.info(
                    "connection_closed",
                    conn_id=self._conn_id,
                    peer=self._client,
                    messages=self.session.messages if isinstance(self.session, GatewaySession) else 0,
                    seconds=round(time.monotonic() - self._opened, 3),
                )
            self._owner.connections.discard(self)
            self._owner.connection_gone()
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        structlog.contextvars.bind_contextvars(conn_id=self._conn_id, peer=self._client)
        host = self.hostname
        if self._refusal is not None:
            log.warning("connection_refused", limit=self._refusal.value, open=self._owner.limiter.total)
            await self._goodbye(replies.too_many_connections(host, per_client=self._refusal is Refusal.PER_CLIENT))
            return
        if self._draining:
            await self._goodbye(replies.shutting_down(host))
            return
        account = self.gsession().account
        log.info("connection_opened", account=account.name if account else None)
        pause = self._owner.config.server.greet_pause
        if pause > 0:
            await asyncio.sleep(pause)
            if self._input_pending():
                log.warning("pipelining_refused", before="greeting")
                await self._goodbye(replies.protocol_synchronization())
                return
        await super()._handle_client()

    async def push(self, status: AnyStr) -> None:
        """Send a reply, adding an enhanced status code where aiosmtpd left it out."""
        if self._ehlo_lines is not None and isinstance(status, str):
            # aiosmtpd pushes (and flushes) each EHLO line on its own; send them as one write.
            self._ehlo_lines.append(status.encode("ascii") + b"\r\n")
        elif isinstance(status, str) and not self._plain_replies:
            await super().push(with_enhanced_code(status))
        else:
            await super().push(status)

    async def _goodbye(self, reply: Reply) -> None:
        """Send a final reply and close the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.push(str(reply))
        if self.transport is not None:
            self.transport.close()

    def _goodbye_now(self, reply: Reply) -> None:
        """Like :meth:`_goodbye`, from synchronous code (timers, shutdown)."""
        if self.transport is None or self.transport.is_closing():
            return
        self._writer.write(str(reply).encode("ascii") + b"\r\n")
        self.transport.close()

    def _timeout_cb(self) -> None:
        log.info("connection_timed_out", conn_id=self._conn_id, peer=self._client, in_data=self._processing)
        self._goodbye_now(replies.timeout(self.hostname))

    # --- graceful shutdown -------------------------------------------------------

    def busy(self) -> bool:
        """A transaction is open (MAIL given) or a message is being received or processed."""
        envelope = self.envelope
        return self._processing or (envelope is not None and envelope.mail_from is not None)

    def begin_shutdown(self) -> None:
        """Stop this session: at once if idle, else after its current transaction."""
        self._draining = True
        if not self.busy():
            self._goodbye_now(replies.shutting_down(self.hostname))

    def abort(self) -> None:
        """The shutdown grace is over: 421 and close, whatever the session is doing."""
        self._goodbye_now(replies.shutting_down(self.hostname))

    # --- command guards ----------------------------------------------------------

    async def _run_command(self, name: str, method: CommandMethod, arg: str | None) -> None:
        """Run one command unless the session is shutting down or pipelined where it may not."""
        if self._draining and not self.busy() and name != "QUIT":
            await self._goodbye(replies.shutting_down(self.hostname))
            return
        pipelined = self._input_pending()
        if pipelined and not (self.gsession().extended_smtp and name in PIPELINABLE):
            log.warning("pipelining_refused", command=name)
            await self._goodbye(replies.protocol_synchronization())
            return
        await method(arg)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address and parameters of a MAIL/RCPT argument (aiosmtpd's, with a fast path)."""
        simple = simple_path(arg)
        if simple is not None and not self.local_part_limit:
            return simple
        result: tuple[str | None, str | None] = super()._getaddr(arg)
        return result

    # --- EHLO/HELO: replies without enhanced codes (RFC 2034 exempts them) ---------

    @syntax("EHLO hostname")  # overriding drops aiosmtpd's HELP text: given again
    async def smtp_EHLO(self, hostname: str) -> None:  # noqa: N802 (aiosmtpd's dispatch name)
        """EHLO, adding PIPELINING (enforced here) and ENHANCEDSTATUSCODES, sent in one write.

        Done here rather than in a handler ``handle_EHLO`` hook: aiosmtpd inspects that
        hook's signature on every connection, which costs more than the rest of EHLO.
        """
        self._ehlo_lines = []
        # aiosmtpd raises the MAIL line limit for SIZE/SMTPUTF8 on every EHLO; start
        # from the base so a client repeating EHLO cannot lift it step by step.
        self.command_size_limits.clear()
        try:
            await super().smtp_EHLO(hostname)
        finally:
            lines, self._ehlo_lines = self._ehlo_lines, None
        if len(lines) < 2:
            # A one-line reply is an error (501 without a hostname).
            if lines:
                await self.push(lines[0][:-2].decode("ascii"))
            return
        structlog.contextvars.unbind_contextvars("queue_id")  # EHLO resets any transaction
        extensions = [line for line in lines[1:-1] if line != b"250-AUTH \r\n"]  # no empty AUTH line
        extensions += [b"250-PIPELINING\r\n", b"250-ENHANCEDSTATUSCODES\r\n"]
        await super().push(b"".join([lines[0], *extensions, lines[-1]])[:-2])

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:  # noqa: N802 (aiosmtpd's dispatch name)
        """HELO, whose reply carries no enhanced code."""
        self._plain_replies = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._plain_replies = False

    # --- DATA ----------------------------------------------------------------------

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:  # noqa: N802 (aiosmtpd's dispatch name)
        """DATA with the gateway's reader (smuggling defence, limits, data timeout)."""
        if await self.check_helo_needed():
            return
        if not self.genvelope().rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        config = self._owner.config.server
        self._processing = True
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            # The whole DATA phase has its own deadline (RFC 5321 4.5.3.2.5/6).
            self._reset_timeout(config.data_timeout)
            result = await read_data(self._reader, max_size=config.max_message_size, line_limit=self.line_length_limit)
            # Processing has its own deadline (processing_timeout, in the pipeline).
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
            if self._input_pending() and not self.gsession().extended_smtp:
                log.warning("pipelining_refused", command="end of DATA")
                await self._goodbye(replies.protocol_synchronization())
                return
            if result.refusal is not None:
                log.warning("message_refused", reason=result.refusal.text, size=result.size)
                self._end_transaction()
                status = str(result.refusal)
            else:
                if result.normalised:
                    log.info("line_endings_normalised")
                self.genvelope().content = self.genvelope().original_content = result.content
                self.gsession().messages += 1
                try:
                    status = await self._call_handler_hook("DATA")
                finally:
                    # Even if the hook failed (aiosmtpd then answers via handle_exception),
                    # the transaction is over.
                    self._end_transaction()
                if status is MISSING:
                    raise RuntimeError("the gateway handler has no DATA hook")
            await self.push(status)
        finally:
            self._processing = False
        self._reset_timeout()
        if self._draining:
            # Let the client QUIT politely; if it says anything else, or nothing
            # within DRAIN_LINGER seconds, it gets 421.
            self.loop.call_later(DRAIN_LINGER, self._goodbye_now, replies.shutting_down(self.hostname))

    # --- AUTH (PLAIN and LOGIN, RFC 4616 and the LOGIN draft) ------------------------

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd's dispatch name)
        """AUTH PLAIN (RFC 4616), verified in a thread."""
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = b64decode(args[1].encode(), validate=True)
            except binascii.Error:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        # RFC 4616 2: acting as another identity is not supported.
        if authzid and authzid != login:
            return await self._auth_failed("PLAIN", login)
        return await self._check_credentials("PLAIN", login, password)

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd's dispatch name)
        """AUTH LOGIN (draft-murchison-sasl-login), verified in a thread."""
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = b64decode(args[1].encode(), validate=True)
            except binascii.Error:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._check_credentials("LOGIN", login, password)

    async def _check_credentials(self, mechanism: str, login: bytes, password: bytes) -> AuthResult:
        username = login.decode("utf-8", errors="replace")
        account = await self._owner.directory.authenticate(username, password.decode("utf-8", errors="replace"))
        if account is None:
            return await self._auth_failed(mechanism, login)
        self.gsession().account = account
        self.gsession().via_auth = True
        log.info("client_authenticated", account=account.name, mechanism=mechanism)
        return AuthResult(success=True, auth_data=account.name, message=str(replies.auth_succeeded()))

    async def _auth_failed(self, mechanism: str, login: bytes) -> AuthResult:
        self._auth_failures += 1
        log.warning("authentication_failed", mechanism=mechanism, username=login.decode("utf-8", errors="replace"))
        if self._auth_failures >= MAX_AUTH_FAILURES:
            await self._goodbye(replies.too_many_auth_failures(self.hostname))
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=str(replies.auth_invalid()))
