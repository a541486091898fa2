"""Run under mpiexec by test_mpi.py: several collectives over MPI; rank 0 prints one digest line per case."""

import hashlib
import sys

import numpy as np

from emulator.collectives import mpi

from tests.collectives.mpi_cases import CASES, case_data  # noqa: E402

me, nproc = mpi.rank_id(), mpi.size()
k = int(sys.argv[1])  # virtual ranks per process
for name, fn, kw, dtype, count in CASES:
    ranks = nproc * k
    mine = [case_data(r, count, dtype) for r in range(me * k, (me + 1) * k)]
    res = getattr(mpi, fn)(mine, timeout=20, **kw)
    allres = mpi.gather(res, timeout=20)
    if me == 0:
        h = hashlib.sha256()
        for part in allres:
            for r in part:
                if r is not None:
                    h.update(np.ascontiguousarray(r).tobytes())
        print(f"{name} {h.hexdigest()}", flush=True)
