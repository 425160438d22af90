"""Claims and their counterexamples: domains, predicates, assignment extraction and the check."""

from rewards.counterexample.check import (
    Claim,
    CounterexampleReason,
    CounterexampleVerdict,
    check_counterexample,
    check_counterexamples,
    load_claim,
)
from rewards.counterexample.domains import DOMAIN_KINDS, Domain, parse_domain
from rewards.counterexample.evaluate import evaluate_predicate
from rewards.counterexample.predicate import FUNCTIONS, parse_predicate

__all__ = [
    "DOMAIN_KINDS",
    "FUNCTIONS",
    "Claim",
    "CounterexampleReason",
    "CounterexampleVerdict",
    "Domain",
    "check_counterexample",
    "check_counterexamples",
    "evaluate_predicate",
    "load_claim",
    "parse_domain",
    "parse_predicate",
]
