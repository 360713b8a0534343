"""A process pool for attachment analysis, with a time and memory limit per attachment.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one stuck task: its
only remedy is to break the whole pool. Here each worker is a process with
its own pipe, started from a forkserver with the analysis code preloaded and
an address-space limit (``RLIMIT_AS``) set before it takes work. A job that
outlives ``attachment_timeout`` gets its worker killed and replaced, and the
attachment is reported ``timeout``; a worker that dies (the kernel or the
allocator refusing memory) is replaced and the attachment reported
``limit-exceeded``. The other workers, and the event loop, carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import resource
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.config import ParserConfig
from gateway.mime.attachments import AttachmentResult, analyse
from gateway.mime.walk import AttachmentJob

log = structlog.get_logger(__name__)

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["gateway.mime.attachments"])
    return _CONTEXT


def _worker_main(conn: multiprocessing.connection.Connection, limits_json: str, memory_mb: int) -> None:
    """Worker process: set the memory limit, then analyse jobs until the pipe closes."""
    limit = memory_mb * 1024 * 1024
    # A hard limit below ours (ValueError) is already stricter.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    limits = ParserConfig.model_validate_json(limits_json)
    while True:
        try:
            job = conn.recv()
            if job is None:
                return
            result = analyse(job, limits)
            conn.send(result)
        except (EOFError, OSError):
            return
        except MemoryError:
            # Not even the job or its result fits: die quietly, the parent reports
            # the attachment as limit-exceeded and starts a fresh worker.
            os._exit(3)


@dataclass(eq=False, slots=True)
class _Worker:
    process: Any
    conn: multiprocessing.connection.Connection

    def stop(self, kill: bool) -> None:
        if kill and self.process.is_alive():
            self.process.kill()
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():  # pragma: no cover - a kill that did not take
            self.process.kill()
            self.process.join(timeout=5)
        self.process.close()


def _roundtrip(worker: _Worker, job: AttachmentJob) -> AttachmentResult:
    worker.conn.send(job)
    result: AttachmentResult = worker.conn.recv()
    return result


class AttachmentPool:
    """``limits.pool_workers`` analysis processes, started on first use."""

    def __init__(self, limits: ParserConfig) -> None:
        self._limits = limits
        self._limits_json = limits.model_dump_json()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._available: asyncio.Semaphore | None = None
        # One thread per worker waits on its pipe, so waits never starve asyncio's default executor.
        self._threads = ThreadPoolExecutor(max_workers=limits.pool_workers, thread_name_prefix="mime-pool")
        self._closed = False

    def _spawn(self) -> _Worker:
        ctx = _context()
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_worker_main,
            args=(child, self._limits_json, self._limits.attachment_memory_mb),
            daemon=True,
            name="gateway-mime-worker",
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    async def analyse(self, job: AttachmentJob) -> AttachmentResult:
        """Analyse ``job`` in a worker; a stuck, dead or failing worker becomes an unscannable result."""
        if self._closed:
            raise RuntimeError("attachment pool is closed")
        if self._available is None:
            self._available = asyncio.Semaphore(self._limits.pool_workers)
        async with self._available:
            worker = self._idle.pop() if self._idle else await asyncio.to_thread(self._spawn)
            self._busy.add(worker)
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._threads, _roundtrip, worker, job)
            try:
                result: AttachmentResult = await asyncio.wait_for(future, self._limits.attachment_timeout)
            except TimeoutError:
                log.warning("attachment_timed_out", part=job.part, timeout=self._limits.attachment_timeout)
                reason = ("timeout", f"analysis took over {self._limits.attachment_timeout:g} s")
            except (EOFError, OSError) as exc:  # BrokenPipeError and ConnectionResetError are OSErrors
                log.warning("attachment_worker_died", part=job.part, error=type(exc).__name__)
                reason = (
                    "limit-exceeded",
                    f"analysis worker died (memory limit {self._limits.attachment_memory_mb} MB)",
                )
            except asyncio.CancelledError:
                # The session went away mid-analysis: the worker is busy with a job nobody
                # waits for, so it is killed rather than leaked.
                self._retire(worker)
                raise
            except Exception as exc:  # e.g. a result that cannot be unpickled: no verdict from this worker
                log.warning("attachment_worker_failed", part=job.part, error=type(exc).__name__)
                reason = ("parse-error", f"analysis worker failed: {type(exc).__name__}")
            else:
                self._busy.discard(worker)
                self._idle.append(worker)
                return result
            await asyncio.to_thread(self._retire, worker)
            return AttachmentResult("", frozenset(), "", (), reason, "", len(job.data))

    def _retire(self, worker: _Worker) -> None:
        self._busy.discard(worker)
        worker.stop(kill=True)

    def close(self) -> None:
        """Stop every worker process and the waiting threads."""
        self._closed = True
        for worker in self._idle:
            with contextlib.suppress(OSError, BrokenPipeError):
                worker.conn.send(None)
            worker.stop(kill=False)
        self._idle.clear()
        for worker in list(self._busy):
            self._retire(worker)
        self._threads.shutdown(wait=False, cancel_futures=True)
