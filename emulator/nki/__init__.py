"""NKI-compatible front end.

So far only :mod:`emulator.nki.collectives` exists: ``nki.collectives``-style SPMD calls (``run_spmd``, ``rank_id``,
``all_reduce``, ...) that meet as rendezvous points and run on the emulator's collective engine. The rest of the NKI
surface (``jit``/``simulate``, ``nki.language``, ``nki.isa``) is not built yet.
"""
