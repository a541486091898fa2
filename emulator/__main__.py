"""``python -m emulator`` is the ``trn3emu`` command."""

from .cli import main

raise SystemExit(main())
