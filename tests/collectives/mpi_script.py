"""Run under mpiexec by test_mpi.py: several collectives over MPI; rank 0 prints one digest line per case."""

import json
import sys

from emulator.collectives import mpi
from emulator.errors import ShapeError

from tests.collectives.mpi_cases import CASES, ERROR_CASES, case_data, digest  # noqa: E402

me, nproc = mpi.rank_id(), mpi.size()
k = int(sys.argv[1])  # virtual ranks per process
for name, fn, kw, dtype, count in CASES:
    ranks = nproc * k
    mine = [case_data(r, count, dtype) for r in range(me * k, (me + 1) * k)]
    res = getattr(mpi, fn)(mine, timeout=20, **kw)
    allres = mpi.gather(res, timeout=20)
    if me == 0:
        print(f"{name} {digest([r for part in allres for r in part])}", flush=True)
for name, fn, kw, dtype, count in ERROR_CASES:
    mine = [case_data(r, count, dtype) for r in range(me * k, (me + 1) * k)]
    try:
        getattr(mpi, fn)(mine, timeout=20, **kw)
        msg = "no error"
    except ShapeError as exc:
        msg = str(exc)
    msgs = mpi.gather(msg, timeout=20)
    if me == 0:
        print(f"ERR {name} {json.dumps(msgs)}", flush=True)
