"""Seeded synthetic arithmetic problems with exact integer answers, in the problem-record layout.

Each level fixes the number of operations, the operand size and the operators (see ``LEVELS``).
Division appears only where it is exact. The split of a problem (train or test) is a function of
its text alone (a SHA-256 hash), so the two splits never share a problem, whatever the seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass
from typing import Sequence, Union

from mathrl.data.record import make_record

__all__ = ["LEVELS", "LevelSpec", "generate_arithmetic", "split_of"]

SOURCE = "arithmetic"
DOMAIN = ["Mathematics -> Arithmetic"]
SPLITS = ("train", "test")

# One problem in TEST_BUCKETS out of HASH_BUCKETS (by text hash) belongs to the test split.
HASH_BUCKETS = 10
TEST_BUCKETS = 1

# Generation gives up when this many candidates in a row are duplicates or belong to the other
# split, which happens only when a level has fewer distinct problems than requested.
MAX_CONSECUTIVE_MISSES = 20_000


@dataclass(frozen=True)
class LevelSpec:
    """Shape of the expressions at one difficulty level."""

    num_ops: int
    max_digits: int
    ops: str
    # Level 1 keeps subtraction results non-negative, so its answers are plain counts.
    non_negative: bool = False


LEVELS: dict[int, LevelSpec] = {
    1: LevelSpec(num_ops=1, max_digits=2, ops="+-", non_negative=True),
    2: LevelSpec(num_ops=1, max_digits=2, ops="+-*/"),
    3: LevelSpec(num_ops=2, max_digits=2, ops="+-*/"),
    4: LevelSpec(num_ops=3, max_digits=2, ops="+-*/"),
    5: LevelSpec(num_ops=4, max_digits=3, ops="+-*/"),
}

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class _Node:
    """An expression tree: a leaf has ``op is None`` and its ``value``."""

    value: int
    op: str | None = None
    left: Union["_Node", None] = None
    right: Union["_Node", None] = None


def split_of(problem: str) -> str:
    """Return the split ("train" or "test") that owns ``problem``, from a hash of its text."""
    digest = hashlib.sha256(problem.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % HASH_BUCKETS
    return "test" if bucket < TEST_BUCKETS else "train"


def _leaf(rng: random.Random, spec: LevelSpec) -> _Node:
    return _Node(value=rng.randint(0, 10**spec.max_digits - 1))


def _combine(rng: random.Random, spec: LevelSpec, left: _Node, right: _Node) -> _Node:
    """Join two subtrees with a random operator of the level; division is only used where exact."""
    ops = list(spec.ops)
    rng.shuffle(ops)
    for op in ops:
        if op == "+":
            return _Node(left.value + right.value, op, left, right)
        if op == "-":
            if spec.non_negative and left.value < right.value:
                left, right = right, left
            return _Node(left.value - right.value, op, left, right)
        if op == "*":
            return _Node(left.value * right.value, op, left, right)
        if op == "/":
            node = _exact_division(rng, spec, left, right)
            if node is not None:
                return node
    raise AssertionError(f"operators {spec.ops!r} contain no operator that always applies")


def _exact_division(rng: random.Random, spec: LevelSpec, left: _Node, right: _Node) -> _Node | None:
    """Return left / right with an integer result, redrawing one leaf operand if needed, or None.

    Divisors are at least 2 and every redrawn leaf keeps the level's digit limit.
    """
    largest = 10**spec.max_digits - 1
    if right.op is None and left.value != 0:
        # Replace the divisor leaf by a divisor of the dividend.
        divisors = [d for d in range(2, largest + 1) if left.value % d == 0]
        if divisors:
            right = _Node(rng.choice(divisors))
            return _Node(left.value // right.value, "/", left, right)
    if left.op is None and right.value >= 2 and largest // right.value >= 1:
        # Replace the dividend leaf by a multiple of the divisor.
        left = _Node(right.value * rng.randint(1, largest // right.value))
        return _Node(left.value // right.value, "/", left, right)
    if abs(right.value) >= 2 and left.value % right.value == 0:
        return _Node(left.value // right.value, "/", left, right)
    return None


def _build(rng: random.Random, spec: LevelSpec, num_ops: int) -> _Node:
    if num_ops == 0:
        return _leaf(rng, spec)
    left_ops = rng.randint(0, num_ops - 1)
    left = _build(rng, spec, left_ops)
    right = _build(rng, spec, num_ops - 1 - left_ops)
    return _combine(rng, spec, left, right)


def _render(node: _Node) -> str:
    """Write the expression with the parentheses that precedence and left associativity require."""
    if node.op is None:
        return str(node.value)
    left = _render(node.left)
    right = _render(node.right)
    precedence = _PRECEDENCE[node.op]
    if node.left.op is not None and _PRECEDENCE[node.left.op] < precedence:
        left = f"({left})"
    if node.right.op is not None:
        right_precedence = _PRECEDENCE[node.right.op]
        # a - (b + c) and a / (b * c) need parentheses, but a + (b - c) and a * (b / c)
        # keep their value without them.
        if right_precedence < precedence or (right_precedence == precedence and node.op in "-/"):
            right = f"({right})"
    return f"{left} {node.op} {right}"


def _solution_steps(node: _Node, steps: list[str]) -> None:
    """Append one line per operation, innermost first, e.g. ``36 / 4 = 9``."""
    if node.op is None:
        return
    _solution_steps(node.left, steps)
    _solution_steps(node.right, steps)
    right = node.right.value
    right_text = f"({right})" if right < 0 else str(right)
    steps.append(f"{node.left.value} {node.op} {right_text} = {node.value}")


def _problem_record(node: _Node, level: int, problem: str) -> dict:
    steps: list[str] = []
    _solution_steps(node, steps)
    digest = hashlib.sha256(problem.encode("utf-8")).hexdigest()[:12]
    return make_record(
        problem,
        str(node.value),
        source=SOURCE,
        domain=list(DOMAIN),
        id=f"arithmetic-{digest}",
        solution="\n".join(steps) + f"\nThe answer is {node.value}.",
        subject="Arithmetic",
        level=level,
    )


def generate_arithmetic(
    n: int = 1000, levels: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0, split: str = "train",
    ops: str | None = None,
) -> list[dict]:
    """Generate ``n`` distinct problems of ``split``, cycling through ``levels`` in order.

    ``ops`` restricts every level to a subset of its operators, e.g. ``"+"`` for addition only.
    The same (n, levels, seed, split, ops) always gives the same list. Raises ValueError when a
    level runs out of distinct problems for the split (level 1 has about 15,000 in all).
    """
    if split not in SPLITS:
        raise ValueError(f"invalid arithmetic split {split!r}; valid splits: {', '.join(SPLITS)}")
    if n < 1:
        raise ValueError(f"invalid arithmetic n={n}; request at least 1 problem")
    levels = [int(level) for level in levels]
    unknown = [level for level in levels if level not in LEVELS]
    if not levels or unknown:
        raise ValueError(
            f"invalid arithmetic levels {levels}; choose from {', '.join(map(str, sorted(LEVELS)))}"
        )

    specs = {level: LEVELS[level] for level in levels}
    if ops is not None:
        for level, spec in specs.items():
            allowed = "".join(op for op in spec.ops if op in ops)
            if not allowed or set(ops) - set("+-*/"):
                raise ValueError(f"invalid arithmetic ops {ops!r} for level {level} (operators {spec.ops!r}); "
                                 "pass a subset of its operators, e.g. '+'")
            specs[level] = dataclasses.replace(spec, ops=allowed)

    rng = random.Random(f"arithmetic/{seed}")
    seen: set[str] = set()
    records = []
    for index in range(n):
        level = levels[index % len(levels)]
        spec = specs[level]
        for _ in range(MAX_CONSECUTIVE_MISSES):
            node = _build(rng, spec, spec.num_ops)
            problem = f"What is {_render(node)}?"
            if problem not in seen and split_of(problem) == split:
                break
        else:
            raise ValueError(
                f"arithmetic level {level} has no more distinct {split} problems after {len(records)} "
                f"rows; request fewer than n={n} or add higher levels"
            )
        seen.add(problem)
        records.append(_problem_record(node, level, problem))
    return records
