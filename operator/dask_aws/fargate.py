"""Fargate task sizes: the cpu/memory pairs AWS accepts.

Source: "Task CPU and memory" in the Amazon ECS developer guide (Fargate). The same
table feeds the pydantic validation and the CRD's CEL rule, so those two can never
disagree. The local AWS does not read it: dask_aws.local.strict keeps its own copy, an
independent transcription that plays AWS's part, and tests/local checks that the two agree.
"""

from __future__ import annotations

# cpu units (1024 = 1 vCPU) -> (lowest MiB, highest MiB, step MiB)
FARGATE_SIZES: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
# 256 cpu allows 512, 1024 and 2048 only; the range form above would also allow 1536.
_EXCEPTIONS: dict[int, tuple[int, ...]] = {256: (512, 1024, 2048)}


def allowed_memory(cpu: int) -> tuple[int, ...]:
    if cpu in _EXCEPTIONS:
        return _EXCEPTIONS[cpu]
    low, high, step = FARGATE_SIZES[cpu]
    return tuple(range(low, high + 1, step))


def fargate_size_error(cpu: int, memory: int) -> str | None:
    """A sentence saying what is wrong with the pair, or None when Fargate accepts it."""
    if cpu not in FARGATE_SIZES:
        valid = ", ".join(str(c) for c in FARGATE_SIZES)
        return f"Fargate does not offer cpu={cpu}; valid cpu values are {valid}"
    options = allowed_memory(cpu)
    if memory in options:
        return None
    return (
        f"Fargate does not offer cpu={cpu} with memory={memory} MiB; "
        f"with cpu={cpu} memory must be {_describe(cpu, options)}"
    )


def _describe(cpu: int, options: tuple[int, ...]) -> str:
    if cpu in _EXCEPTIONS:
        return "one of " + ", ".join(str(m) for m in options) + " MiB"
    low, high, step = FARGATE_SIZES[cpu]
    return f"between {low} and {high} MiB in steps of {step}"


def cel_rule(cpu: str, memory: str) -> str:
    """The same table as a CEL expression over two field paths."""
    clauses = []
    for c, (low, high, step) in FARGATE_SIZES.items():
        if c in _EXCEPTIONS:
            allowed = ", ".join(str(m) for m in _EXCEPTIONS[c])
            clauses.append(f"({cpu} == {c} && {memory} in [{allowed}])")
        else:
            clauses.append(
                f"({cpu} == {c} && {memory} >= {low} && {memory} <= {high}"
                f" && {memory} % {step} == 0)"
            )
    return " || ".join(clauses)
