"""A reward for tests that must run without the answer verifier: exact match of the last \\boxed{}."""

from mathrl.data.record import last_boxed


def boxed_exact(completions, answer, **columns):
    return [
        None if gold is None else float(last_boxed(text) == gold) for text, gold in zip(completions, answer)
    ]
