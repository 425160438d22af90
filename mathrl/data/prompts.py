r"""Prompt templates: turn a problem record into chat messages, and records into TRL dataset rows.

Every template requests the final answer in ``\boxed{}``, the form that the answer extraction in
``rewards`` handles.
"""

from __future__ import annotations

from typing import Callable, Iterable, Union

from mathrl.registry import Registry

__all__ = ["PROMPT_TEMPLATES", "PromptTemplate", "format_prompt", "register_prompt_template", "to_trl_rows"]

PromptTemplate = Callable[[dict], list[dict]]

PROMPT_TEMPLATES: Registry[PromptTemplate] = Registry("prompt template")

BOXED_INSTRUCTION = "Reason briefly, step by step, then write the final answer as \\boxed{answer}."
PLAIN_INSTRUCTION = "Give the final answer in \\boxed{}."


def register_prompt_template(name: str):
    """Register ``fn(record) -> list of chat messages`` under ``name``."""
    return PROMPT_TEMPLATES.register(name)


@register_prompt_template("boxed")
def boxed_prompt(record: dict) -> list[dict]:
    r"""One user message: the problem, then the instruction to reason briefly and box the answer.

    >>> boxed_prompt({"problem": "What is 2 + 3?"})[0]["content"].splitlines()[0]
    'What is 2 + 3?'
    """
    return [{"role": "user", "content": f"{record['problem']}\n\n{BOXED_INSTRUCTION}"}]


@register_prompt_template("boxed_system")
def boxed_system_prompt(record: dict) -> list[dict]:
    """Put the ``boxed`` instruction in a system message and the bare problem in the user message."""
    return [
        {"role": "system", "content": BOXED_INSTRUCTION},
        {"role": "user", "content": record["problem"]},
    ]


@register_prompt_template("plain")
def plain_prompt(record: dict) -> list[dict]:
    r"""The problem and a fixed short suffix, for a tiny model trained from scratch.

    >>> plain_prompt({"problem": "What is 2 + 3?"})
    [{'role': 'user', 'content': 'What is 2 + 3?\nGive the final answer in \\boxed{}.'}]
    """
    return [{"role": "user", "content": f"{record['problem']}\n{PLAIN_INSTRUCTION}"}]


def format_prompt(record: dict, template: Union[str, PromptTemplate] = "boxed") -> list[dict]:
    """Return the chat messages for ``record`` using a registered template name or a callable."""
    template_fn = PROMPT_TEMPLATES.get(template) if isinstance(template, str) else template
    if "problem" not in record:
        raise ValueError(
            f"record has no 'problem' key (keys: {', '.join(sorted(record))}); pass a problem record"
        )
    return template_fn(record)


def to_trl_rows(records: Iterable[dict], template: Union[str, PromptTemplate] = "boxed") -> list[dict]:
    """Return TRL conversational rows: each record's fields plus ``prompt`` (the chat messages).

    A ``prompt`` key already in a record is replaced. The other fields reach TRL reward functions
    as keyword columns (``answer``, ``source``, ...).
    """
    template_fn = PROMPT_TEMPLATES.get(template) if isinstance(template, str) else template
    rows = []
    for record in records:
        row = dict(record)
        row["prompt"] = format_prompt(record, template_fn)
        rows.append(row)
    return rows
