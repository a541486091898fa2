"""Helpers for Numba intrinsics written in LLVM vector IR (used by the MX kernels' hot loops).

Generic LLVM vector operations only (no x86 intrinsics), so every target Numba supports compiles them; the x86
backend turns them into AVX2 or AVX-512 code. The callers keep their indices inside the arrays: these bypass
Numba's bounds handling, and take contiguous 1-D arrays only (their typing refuses anything else).
"""

from __future__ import annotations

try:
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - only without Numba (the kernels then never run)
    ir = types = intrinsic = None

__all__ = ["splat", "elem_ptr", "vfunc", "contiguous_1d", "absmax_pattern32"]


def splat(builder, value, vty):
    """A ``vty`` vector of the integer ``value`` (truncated or widened to the element width)."""
    ety = vty.element
    w = value.type.width
    value = builder.trunc(value, ety) if w > ety.width else (builder.zext(value, ety) if w < ety.width else value)
    undef = ir.Constant(vty, ir.Undefined)
    one = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, undef, ir.Constant(ir.VectorType(ir.IntType(32), vty.count), [0] * vty.count))


def elem_ptr(context, builder, aty, arr, idx, vty):
    """Pointer (as a pointer to ``vty``) to element ``idx`` of the contiguous 1-D array ``arr`` of Numba type aty."""
    data = context.make_array(aty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [idx]), vty.as_pointer())


def vfunc(builder, name, vty, nargs=2, ret=None):
    """The LLVM intrinsic ``name`` taking ``nargs`` operands of ``vty`` (declared in the module once)."""
    m = builder.module
    return m.globals.get(name) or ir.Function(m, ir.FunctionType(ret or vty, [vty] * nargs), name)


def contiguous_1d(*tys) -> bool:
    return all(isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" for t in tys)


if intrinsic is None:  # pragma: no cover
    absmax_pattern32 = None
else:
    @intrinsic
    def absmax_pattern32(typingctx, row, b):
        """The largest magnitude pattern, as fp32 bits (uint32), of the 32 elements ``row[b:b+32]`` (fp32 patterns
        as uint32, or bf16 ones as uint16: then the top half of the fp32 pattern). One vector max tree and a
        horizontal max: written as a chain of scalar maxima, LLVM left the reduction scalar (a compare and a
        conditional move per element)."""
        if not (contiguous_1d(row) and isinstance(row.dtype, types.Integer) and row.dtype.bitwidth in (16, 32)):
            return None
        sig = types.uint32(row, b)

        def codegen(context, builder, signature, args):
            width = signature.args[0].dtype.bitwidth
            ety = ir.IntType(width)
            vty = ir.VectorType(ety, 32)
            x = builder.load(elem_ptr(context, builder, signature.args[0], args[0], args[1], vty), align=1)
            x = builder.and_(x, ir.Constant(vty, [(1 << (width - 1)) - 1] * 32))
            m = builder.call(vfunc(builder, f"llvm.vector.reduce.umax.v32i{width}", vty, 1, ety), [x])
            m = builder.zext(m, ir.IntType(32)) if width < 32 else m
            return builder.shl(m, ir.Constant(ir.IntType(32), 32 - width)) if width < 32 else m

        return sig, codegen
