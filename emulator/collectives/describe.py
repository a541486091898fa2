"""``emu.collectives.explain``: a collective's schedule, reduction order and cost estimate as readable text.

By default the text is a summary that stays short at any rank count (rounds per phase, bytes moved, the reduction
order as a pattern); ``full=True`` (``trn3emu explain collective ... --full``) lists every round and the whole order.
"""

from __future__ import annotations

from .algorithms import build
from .cost import estimate
from .topology import TIER_NAMES, Topology

__all__ = ["explain", "order_of", "order_pattern"]

_SHORT = 100  # an order expression up to this many characters is shown as it is


def explain(collective: str = "all_reduce", ranks: int = 8, count: int = 1 << 20, dtype: str = "bfloat16",
            algorithm: str | None = None, channels: int = 1, server_ranks: int | None = None,
            topology: Topology | None = None, rounds: int = 3, full: bool = False) -> str:
    """The schedule (first ``rounds`` rounds, or all with ``full``), the reduction order of chunk 0 and the cost
    estimate, as text.

    >>> text = explain("all_reduce", ranks=64, count=1024, algorithm="ring")
    >>> print(text.splitlines()[0])
    all_reduce / ring: 64 ranks, 64 chunks (1 channel(s)), 126 rounds, 8064 steps
    >>> print(text.splitlines()[1])
    phases: 63 rounds reduce-scatter, then 63 rounds all-gather
    >>> print([ln for ln in text.splitlines() if ln.startswith("order")][0])
    order of chunk 0: a chain of 63 adds, each rounded: x1 + x2 + ... + x63 + x0, left to right
    >>> len(explain("all_reduce", ranks=64, count=1024, full=True).splitlines()) > 126
    True
    """
    from ..numerics import formats
    from .local import resolve_options

    itemsize = max(1, formats.get(dtype).storage_bits // 8)
    opts = resolve_options(algorithm, channels, None, server_ranks)
    topo = Topology.preset() if topology is None else topology
    lines = []
    if collective in ("all_reduce", "reduce_scatter", "reduce") and ranks <= 4096:
        sch = build(collective, opts["algorithm"], ranks, opts["channels"], 16, opts["server_ranks"])
        shown = sch.describe(len(sch.rounds) if full else rounds).splitlines()
        lines.append(shown[0])
        lines.append("phases: " + _phases(sch.labels))
        chunk_bytes = -(-count // sch.layout.chunks) * itemsize
        lines.append(f"traffic: {sch.steps} steps of one {chunk_bytes:,} B chunk each = {sch.steps * chunk_bytes:,} B "
                     f"over the links, {sch.steps * chunk_bytes / ranks:,.0f} B per rank")
        lines += shown[1:]
        if not full and len(sch.rounds) > rounds:
            lines.append(f"  (explain(..., full=True) or --full lists all {len(sch.rounds)} rounds)")
        expr = order_of(sch, 0, limit=None)
        lines.append("order of chunk 0: " + (expr if full or len(expr) <= _SHORT else order_pattern(expr)))
    e = estimate(collective, ranks, count, itemsize, opts["algorithm"], topo, opts["channels"],
                 opts["server_ranks"])
    lines.append(topo.describe(ranks))
    lines.append(f"estimate ({e['method']}): {e['seconds'] * 1e6:.1f} us for {e['bytes']} B per rank; "
                 f"algbw {e['algbw'] / 1e9:.2f} GB/s, busbw {e['busbw'] / 1e9:.2f} GB/s")
    if "by_tier" in e:
        lines.append("rounds by slowest tier: " + ", ".join(
            f"{TIER_NAMES[i]} {int(n)}" for i, n in enumerate(e["by_tier"]) if n))
    return "\n".join(lines)


def _phases(labels) -> str:
    """``63 rounds reduce-scatter, then 63 rounds all-gather`` from the per-round labels."""
    runs: list[list] = []
    for lab in labels:
        if runs and runs[-1][1] == lab:
            runs[-1][0] += 1
        else:
            runs.append([1, lab])
    if len(runs) > 6:  # e.g. recursive halving labels every round differently: name the first and the last
        return f"{len(labels)} rounds, from {runs[0][1]} to {runs[-1][1]}"
    return ", then ".join(f"{n} round{'s' if n > 1 else ''} {lab}" for n, lab in runs)


def order_of(sch, chunk: int, limit: int | None = 400) -> str:
    """The expression a chunk's result holds, e.g. ``((x1+x2)+x3)+x0``: brackets are roundings."""
    expr = {r: f"x{r}" for r in range(sch.ranks)}
    for rnd in sch.rounds:
        new = {}
        for st in rnd:
            if st.chunk == chunk:
                parts = [expr[i] for i in st.inputs]
                new[st.dst] = parts[0] if st.kind == "copy" else "(" + "+".join(parts) + ")"
        expr.update(new)
    out = expr[min(sch.holders[chunk])]
    return out if limit is None or len(out) <= limit else out[:limit] + "..."


def _parse(expr: str):
    """``((x1+x2)+x0)`` -> nested lists of rank numbers: [[1, 2], 0]."""
    stack: list[list] = [[]]
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "(":
            stack.append([])
        elif c == ")":
            node = stack.pop()
            stack[-1].append(node)
        elif c == "x":
            j = i + 1
            while j < len(expr) and expr[j].isdigit():
                j += 1
            stack[-1].append(int(expr[i + 1:j]))
            i = j
            continue
        i += 1
    return stack[0][0]


def _leaves(node) -> list[int]:
    return [node] if isinstance(node, int) else [x for child in node for x in _leaves(child)]


def _depth(node) -> int:
    return 0 if isinstance(node, int) else 1 + max(_depth(c) for c in node)


def _runs(ranks: list[int]) -> str:
    """``x1 + x2 + ... + x63 + x0`` for the leaf order 1..63, 0 (runs of 4 or more consecutive ranks shortened)."""
    parts, i = [], 0
    while i < len(ranks):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] == ranks[j] + 1:
            j += 1
        if j - i >= 3:
            parts += [f"x{ranks[i]}", f"x{ranks[i + 1]}", "...", f"x{ranks[j]}"]
        else:
            parts += [f"x{r}" for r in ranks[i:j + 1]]
        i = j + 1
    if len(parts) > 12:  # a scrambled order (trees): the first terms and the last ones tell the pattern
        parts = parts[:8] + [f"... ({len(parts) - 11} more terms)"] + parts[-3:]
    return " + ".join(parts)


def order_pattern(expr: str) -> str:
    """A long order expression as a readable pattern (brackets are roundings).

    >>> order_pattern("((((x1+x2)+x3)+x4)+x0)")
    'a chain of 4 adds, each rounded: x1 + x2 + x3 + x4 + x0, left to right'
    >>> order_pattern("(((x0+x1)+(x2+x3))+((x4+x5)+(x6+x7)))")
    'a tree of 7 adds, 3 roundings deep, over x0 + x1 + ... + x7'
    """
    tree = _parse(expr)
    leaves = _leaves(tree)
    node, chain = tree, True
    while not isinstance(node, int):  # a left chain: every node is (chain + leaf)
        if len(node) != 2 or not isinstance(node[1], int):
            chain = False
            break
        node = node[0]
    if chain:
        return f"a chain of {len(leaves) - 1} adds, each rounded: {_runs(leaves)}, left to right"
    return f"a tree of {len(leaves) - 1} adds, {_depth(tree)} roundings deep, over {_runs(leaves)}"
