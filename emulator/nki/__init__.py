"""NKI-compatible front end (not built yet: see the open issues)."""
