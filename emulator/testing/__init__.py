"""emulator.testing: hypothesis strategies and bitwise comparators for low-precision dtype tests."""
