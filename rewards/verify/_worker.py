"""Entry point of a verifier worker process: ``python -m rewards.verify._worker READ_FD WRITE_FD``.

It reads ``(task_id, gold, answer, options)`` tuples and writes ``(task_id, correct, reason)``
back. The parent kills it when a task overruns its time limit, so it needs no timer of its own.
"""

from __future__ import annotations

import logging
import os
import sys
from multiprocessing.connection import Connection

_MEMORY_LIMIT_BYTES = 4 * 1024**3


def _limit_memory() -> None:
    # A runaway sympy computation then fails with MemoryError instead of swapping the host.
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(_MEMORY_LIMIT_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def main(read_fd: int, write_fd: int) -> None:
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    from rewards.verify.judge import Reason, judge

    _limit_memory()
    outbox.send(("ready", os.getpid()))
    log = logging.getLogger("rewards.verify.worker")
    while True:
        try:
            task_id, gold, answer, options = inbox.recv()
        except (EOFError, OSError):
            return
        try:
            correct, reason = judge(gold, answer, options)
        except MemoryError:
            correct, reason = False, Reason.TOO_LARGE
        except Exception as exc:  # noqa: BLE001 - one bad pair must not end the worker
            log.warning("verifier failed on gold %r, answer %r: %r", gold[:80], answer[:80], exc)
            correct, reason = None, Reason.UNPARSED_ANSWER
        outbox.send((task_id, correct, reason.value))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
