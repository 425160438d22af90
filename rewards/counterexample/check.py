"""Check a proposed counterexample to a claim, under the verifier's hard time limit per check.

A claim is a mapping with ``variables`` (name -> domain, as a dict or a JSON string) and
``predicate`` (the property asserted for every value). A completion's counterexample is correct
when it assigns every variable, each value lies in its domain, and the predicate is false there.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import sympy

from rewards.counterexample.assignment import answer_candidates, parse_assignment
from rewards.counterexample.domains import Domain, OutsideDomain, parse_domain
from rewards.counterexample.evaluate import Undefined, evaluate_predicate
from rewards.counterexample.predicate import parse_predicate
from rewards.verify import nodes
from rewards.verify.errors import ParseError, TooLarge
from rewards.verify.options import VerifyOptions, resolve_options

__all__ = [
    "Claim",
    "CounterexampleReason",
    "CounterexampleVerdict",
    "check_counterexample",
    "check_counterexamples",
    "check_in_process",
    "load_claim",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 0.5
_NAME = re.compile(r"^[A-Za-z](?:_[A-Za-z0-9]+)?$")


class CounterexampleReason(str, enum.Enum):
    """Cause of a counterexample verdict; each value gets its own count in training logs."""

    COUNTEREXAMPLE = "counterexample"
    NOT_A_COUNTEREXAMPLE = "not_a_counterexample"
    OUTSIDE_DOMAIN = "outside_domain"
    MISSING_VARIABLE = "missing_variable"
    UNPARSED_ANSWER = "unparsed_answer"
    NO_ANSWER = "no_answer"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    CHECK_FAILED = "check_failed"
    NO_CHECK = "no_check"


@dataclass(frozen=True)
class CounterexampleVerdict:
    """Result of one check. ``correct`` is None when the claim has no predicate (``no_check``) or
    the check timed out or failed, never as a synonym for wrong. ``assignment`` maps each variable the
    answer assigned to its value as text."""

    correct: bool | None
    reason: CounterexampleReason
    assignment: dict[str, str] | None = None


@dataclass(frozen=True)
class Claim:
    """A checkable claim: every value of ``variables`` is asserted to satisfy ``predicate``."""

    variables: dict[str, Domain]
    predicate: Any
    predicate_text: str
    variables_json: str


def _variables_json(variables: Any) -> str:
    if isinstance(variables, str):
        try:
            variables = json.loads(variables)
        except json.JSONDecodeError as error:
            raise ValueError(f"claim variables {variables!r:.80} are not valid JSON: {error}") from None
    if not isinstance(variables, Mapping) or not variables:
        raise ValueError(
            f"claim variables must map names to domains, e.g. {{'n': 'natural'}}, got {variables!r:.80}"
        )
    return json.dumps(dict(variables), sort_keys=False)


@functools.lru_cache(maxsize=4096)
def _load(variables_json: str, predicate: str) -> Claim:
    raw = json.loads(variables_json)
    variables = {}
    for name, domain in raw.items():
        if not _NAME.match(name):
            raise ValueError(
                f"invalid variable name {name!r}; use one letter, optionally with a subscript (a_1)"
            )
        variables[name] = parse_domain(domain)
    try:
        parsed = parse_predicate(predicate, variables)
    except (ParseError, TooLarge) as error:
        raise ValueError(f"invalid claim predicate {predicate!r}: {error}") from None
    return Claim(variables, parsed, predicate, variables_json)


def load_claim(claim: Mapping | Claim) -> Claim | None:
    """Return the checkable form of a claim record, or None when it has no predicate.

    Raises ``ValueError`` naming the problem when ``variables`` or ``predicate`` is invalid.
    """
    if isinstance(claim, Claim):
        return claim
    if not isinstance(claim, Mapping):
        raise TypeError(
            f"a claim must be a mapping with 'variables' and 'predicate', got {type(claim).__name__}"
        )
    predicate = claim.get("predicate")
    if predicate is None or (isinstance(predicate, str) and not predicate.strip()):
        return None
    if not isinstance(predicate, str):
        raise ValueError(f"claim predicate must be a string, got {predicate!r:.80}")
    return _load(_variables_json(claim.get("variables")), predicate.strip())


def _show(value: Any) -> str:
    """Short text for a parsed value; huge integers are described, not printed."""
    if isinstance(value, nodes.Matrix):
        return str([[_show(entry) for entry in row] for row in value.rows]).replace("'", "")
    if isinstance(value, sympy.Integer) and abs(int(value)).bit_length() > 200:
        return f"<integer with about {int(abs(int(value)).bit_length() * 0.30103) + 1} digits>"
    try:
        text = str(value)
    except ValueError:  # an integer past Python's str() digit limit inside an expression
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:200] + "..."


def check_in_process(
    variables_json: str, predicate: str, candidates: list[str], options: VerifyOptions
) -> tuple[bool, str, dict[str, str] | None]:
    """Check the candidates against the claim in this process; returns ``(correct, reason, assignment)``.

    Workers run this under the time limit; call ``check_counterexample`` instead.
    """
    claim = _load(variables_json, predicate)
    names = list(claim.variables)
    try:
        raw = parse_assignment(candidates, names, options)
    except TooLarge:
        return False, CounterexampleReason.TOO_LARGE.value, None
    except KeyError:
        return False, CounterexampleReason.MISSING_VARIABLE.value, None
    except ParseError:
        return False, CounterexampleReason.UNPARSED_ANSWER.value, None
    shown = {name: _show(value) for name, value in raw.items()}
    if set(names) - set(raw):
        return False, CounterexampleReason.MISSING_VARIABLE.value, shown
    try:
        values = {name: claim.variables[name].coerce(raw[name]) for name in names}
        holds = evaluate_predicate(claim.predicate, values, options)
    except (OutsideDomain, Undefined):
        return False, CounterexampleReason.OUTSIDE_DOMAIN.value, shown
    except TooLarge:
        return False, CounterexampleReason.TOO_LARGE.value, shown
    reason = CounterexampleReason.NOT_A_COUNTEREXAMPLE if holds else CounterexampleReason.COUNTEREXAMPLE
    return not holds, reason.value, shown


def check_counterexamples(
    pairs: Iterable[tuple[Mapping | Claim, Any]],
    options: VerifyOptions | None = None,
    workers: int | None = None,
    **overrides: Any,
) -> list[CounterexampleVerdict]:
    """Check ``(claim, completion)`` pairs in worker processes; results keep the input order.

    ``overrides`` set ``VerifyOptions`` fields; ``timeout`` (default 0.5 s) limits each check,
    and ``timeout=0`` checks in the calling process without a limit.
    """
    if options is None:
        overrides.setdefault("timeout", DEFAULT_TIMEOUT_S)
    opts = resolve_options(options, **overrides)
    verdicts: list[CounterexampleVerdict | None] = []
    jobs: list[tuple[tuple, float]] = []
    slots: list[int] = []
    for claim, completion in pairs:
        loaded = load_claim(claim)
        if loaded is None:
            verdicts.append(CounterexampleVerdict(None, CounterexampleReason.NO_CHECK))
            continue
        candidates = answer_candidates(completion)
        if not candidates:
            verdicts.append(CounterexampleVerdict(False, CounterexampleReason.NO_ANSWER))
            continue
        slots.append(len(verdicts))
        verdicts.append(None)
        jobs.append(((loaded.variables_json, loaded.predicate_text, candidates, opts), opts.timeout))

    if jobs and opts.timeout > 0:
        from rewards.verify.pool import get_pool

        results = get_pool(workers).call("counterexample", jobs)
    else:
        results = [("ok", check_in_process(*args)) for args, _ in jobs]
    timeouts = 0
    for slot, (status, value) in zip(slots, results):
        if status == "ok":
            correct, reason, shown = value
            verdicts[slot] = CounterexampleVerdict(correct, CounterexampleReason(reason), shown)
        elif status == "memory":
            verdicts[slot] = CounterexampleVerdict(False, CounterexampleReason.TOO_LARGE)
        elif status == "error":
            logger.warning("counterexample check failed: %s", value)
            verdicts[slot] = CounterexampleVerdict(None, CounterexampleReason.CHECK_FAILED)
        else:
            timeouts += 1
            verdicts[slot] = CounterexampleVerdict(None, CounterexampleReason.TIMEOUT)
    if timeouts:
        logger.debug("counterexample: %d of %d checks timed out", timeouts, len(jobs))
    return verdicts  # type: ignore[return-value]


def check_counterexample(
    claim: Mapping | Claim, completion: Any, options: VerifyOptions | None = None, **overrides: Any
) -> CounterexampleVerdict:
    r"""Check the counterexample that ``completion`` proposes for ``claim``.

    >>> claim = {"variables": {"n": "natural"}, "predicate": "isprime(n^2 + n + 41)"}
    >>> check_counterexample(claim, r"False: take $n = 40$, since 40^2+40+41 = 41^2. \boxed{False}").reason
    <CounterexampleReason.COUNTEREXAMPLE: 'counterexample'>
    >>> check_counterexample(claim, r"\boxed{n = 39}").reason
    <CounterexampleReason.NOT_A_COUNTEREXAMPLE: 'not_a_counterexample'>
    >>> check_counterexample({"statement": "Every group is abelian."}, "S_3").correct is None
    True
    """
    return check_counterexamples([(claim, completion)], options, **overrides)[0]
