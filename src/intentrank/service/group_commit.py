"""Group commit: event batches that arrive while a commit is running are stored in the next commit together.

Each request thread queues its batch and takes the commit lock; the thread that gets it first (the
leader) drains the queue and stores every queued batch in one transaction, then hands each waiting
thread its own result (its event-id range, or its own refusal). A thread whose batch a leader already
committed returns at once. Nothing is acknowledged before the transaction holding it committed, so
"acknowledged only once durable" holds; what changes is that one fsync serves many requests under
concurrent load (one request alone is committed by itself, as before).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pending:
    """One request's batch waiting for a commit, and what the commit gave it."""

    payload: Any
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class GroupCommitter:
    """Commits queued payloads in groups (see the module docstring).

    Args:
        commit: ``commit(pendings)`` stores the payloads of a group in one transaction and sets each
            ``Pending``'s ``result`` or ``error`` (an error of the whole transaction is set on every
            one by the committer).
        max_group: most batches one commit takes (bounds a transaction's size).
    """

    def __init__(self, commit: Callable[[list[Pending]], None], max_group: int = 64) -> None:
        self._commit = commit
        self.max_group = max_group
        self._queue: list[Pending] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        #: commits run and batches they carried (for metrics and benchmarks)
        self.commits = 0
        self.batches = 0

    def submit(self, payload: Any) -> Any:
        """Store ``payload`` (with whatever else is queued); returns its result or raises its error."""
        me = Pending(payload)
        with self._queue_lock:
            self._queue.append(me)
        while not me.done:
            with self._commit_lock:
                if me.done:
                    break
                with self._queue_lock:
                    group, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
                try:
                    self._commit(group)
                except BaseException as err:
                    for p in group:
                        if not p.done:
                            p.error = err
                finally:
                    for p in group:
                        p.done = True
                    self.commits += 1
                    self.batches += len(group)
        if me.error is not None:
            raise me.error
        return me.result
