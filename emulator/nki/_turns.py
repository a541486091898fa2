"""Lockstep scheduling of the programs of one launch (setting ``lnc_schedule``).

The programs of ``kernel[2](...)`` run as threads. On hardware the two cores of an LNC pair start together and issue
their instruction streams side by side; OS threads instead run in whatever order the interpreter switches them, so a
kernel whose programs touch the same shared-HBM bytes without a barrier (each core zero-filling a shared output that
the other core then writes into, say) could give a different result on every run. Under ``lockstep`` (the default)
the programs take turns in rank order at every instruction that can touch memory another program sees (a DMA: HBM
is shared; SBUF and PSUM are each core's own): program 0 issues its first DMA, then program 1 its first, then
program 0 its second, and so on; between two DMAs a program's compute instructions run in its own turn, as they
cannot change what the other program reads. A program waiting in a rendezvous (``core_barrier``, ``sendrecv``,
an ``nki.collectives`` call) gives up its turns until the rendezvous is complete, and a finished program drops out.
Results are then the same on every run and on every machine; ``free`` keeps the unordered threads.

The turn passes under the launch's one condition variable, which the rendezvous also wait on, so a program blocked
in a rendezvous and the program holding the turn never wait on each other's locks.

>>> import threading
>>> cond = threading.Condition()
>>> turns = Turns(2, cond)
>>> order = []
>>> def program(rank):
...     turns.start(rank)
...     for i in range(3):
...         turns.step(rank)
...         order.append((rank, i))
...     turns.finish(rank)
>>> threads = [threading.Thread(target=program, args=(r,)) for r in (1, 0)]
>>> for t in threads: t.start()
>>> for t in threads: t.join()
>>> order
[(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
"""

from __future__ import annotations

import threading
from typing import Callable

from ..errors import RankFailure

__all__ = ["Turns"]


class Turns:
    """Round-robin turns of ``n`` programs sharing ``cond``; every method is called by the program ``me`` itself."""

    def __init__(self, n: int, cond: threading.Condition) -> None:
        self.n = n
        self.cond = cond
        self.turn: int | None = 0
        self.finished: set[int] = set()
        self.blocked: dict[int, Callable[[], bool]] = {}  # rank -> the rendezvous condition it waits for
        self.failed = False

    def _can_run(self, rank: int) -> bool:
        if rank in self.finished:
            return False
        ready = self.blocked.get(rank)
        return ready is None or ready()

    def _pass(self, me: int) -> None:
        """Give the turn to the next program after ``me`` (in rank order, wrapping) that can run; None if none can."""
        for k in range(1, self.n + 1):
            rank = (me + k) % self.n
            if self._can_run(rank):
                self.turn = rank
                break
        else:
            self.turn = None
        self.cond.notify_all()

    def _await(self, me: int) -> None:
        self.cond.wait_for(lambda: self.turn == me or self.failed)
        if self.failed:  # another program raised: stop here rather than run on unordered
            raise RankFailure(f"program {me} stopped: another program of the launch failed", rank=me)

    def start(self, me: int) -> None:
        """Wait for this program's first turn (program 0 has it)."""
        with self.cond:
            self._await(me)

    def step(self, me: int) -> None:
        """Before a DMA or a rendezvous (the points where programs can see each other's writes): let the other
        programs reach theirs first, then go on."""
        with self.cond:
            if self.turn == me:
                self._pass(me)
            self._await(me)

    def wait(self, me: int, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait in a rendezvous until ``ready()`` (``cond`` held by the caller), giving up the turn meanwhile.

        Returns False when ``ready`` stays false for ``timeout`` seconds (the caller names the missing program);
        once it holds, the program also waits for its turn, which comes without a time limit.
        """
        self.blocked[me] = ready
        try:
            if self.turn == me or self.turn is None:
                self._pass(me)
            if not self.cond.wait_for(lambda: ready() or self.failed, timeout):
                return False
            if not self.failed:  # the caller raises the launch's error itself
                if self.turn is None:  # every program was blocked; a rendezvous outside the launch released this one
                    self.turn = me
                self._await(me)
            return True
        finally:
            self.blocked.pop(me, None)

    def finish(self, me: int) -> None:
        """The program ended (normally or not): it drops out of the rotation."""
        with self.cond:
            self.finished.add(me)
            if self.turn == me:
                self._pass(me)

    def fail(self) -> None:
        """A program failed: release every program waiting for a turn (``cond`` held by the caller)."""
        self.failed = True
        self.cond.notify_all()
