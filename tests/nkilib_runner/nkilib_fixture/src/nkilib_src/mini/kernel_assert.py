def kernel_assert(condition: bool, error_text: str):
    assert condition, f"[NCC_INKI016] Kernel validation exception: {error_text}"
