"""Hand-written problem rows for the filter tests: each row names the filter that must remove it
(``expect``), or None when every filter must keep it."""

from __future__ import annotations

import json
from pathlib import Path

from mathrl.data import load_problems


def _row(row_id: str, problem: str, answer, expect: str | None, **extra) -> dict:
    return {"id": row_id, "problem": problem, "answer": answer, "expect": expect, **extra}


MIXED_ROWS = [
    _row("keep-linear", r"Solve for $x$: $3x + 7 = 22$.", "5", None),
    _row("dup-linear", r"Solve  for $x$:   $3x+7 = 22$.", "5", "exact_dedup"),
    _row(
        "keep-train",
        "A train leaves the station at 3 pm travelling at 60 miles per hour toward a city "
        "that is 150 miles away. At what time does it arrive at the city?",
        r"5:30 \text{ pm}",
        None,
    ),
    _row(
        "near-train",
        "A train leaves the station at 4 pm travelling at 60 miles per hour toward a city "
        "that is 150 miles away. At what time does it arrive at the city?",
        r"6:30 \text{ pm}",
        "near_dedup",
    ),
    _row("mcq-paren", r"What is $2^{10}$? (A) 512 (B) 1000 (C) 1024 (D) 2048", "C", "multiple_choice"),
    _row("mcq-lines", "Which number is prime?\nA. 21\nB. 27\nC. 29\nD. 33", "29", "multiple_choice"),
    _row(
        "mcq-textbf",
        r"The sum is $\textbf{(A) }4\qquad\textbf{(B) }5\qquad\textbf{(C) }6$",
        r"\textbf{(B)}",
        "multiple_choice",
    ),
    _row(
        "mcq-phrase",
        "Which of the following numbers is the largest: 0.3, 1/3 or 0.33?",
        "(B)",
        "multiple_choice",
    ),
    _row(
        "true-false",
        "True or false: every even number greater than 2 is the sum of two primes?",
        "True",
        "binary_answer",
    ),
    _row("yes-no", "Is 1001 divisible by 7?", r"\text{Yes}", "binary_answer"),
    _row(
        "multi-part",
        "A box holds 3 red and 5 blue balls.\n(a) How many balls are there?\n(b) What fraction is red?",
        r"(a) 8, (b) \frac{3}{8}",
        "multi_part",
    ),
    _row("multi-part-numbered", "Let f(x) = x^2. (1) Find f(3). (2) Find f(f(2)).", "9; 16", "multi_part"),
    _row("proof-answer", r"Prove that $\sqrt{2}$ is irrational.", "Proof", "proof"),
    _row("proof-verb", "Show that the product of two odd integers is odd.", "The product is odd", "proof"),
    _row("keep-show-find", "Show that f(x) = x^3 is odd, and find f(2).", "8", None),
    _row(
        "figure-asy",
        "In the diagram, the angle ABC is 40 degrees.\n[asy]\ndraw((0,0)--(1,0));\n[/asy]\n"
        "Find angle ACB if the triangle is isosceles with AB = AC.",
        "70",
        "figures_links",
    ),
    _row(
        "hyperlink",
        "Using the table at https://example.org/primes, find the 100th prime.",
        "541",
        "figures_links",
    ),
    _row("image", "Find the shaded area. ![figure](images/area.png)", "12", "figures_links"),
    _row(
        "figure-ref",
        "In the figure below, the radius of the circle is 3. Find the area of the square.",
        "36",
        "figures_links",
    ),
    _row(
        "french",
        "Un marchand achète des pommes à deux euros le kilo et les revend à trois euros le kilo. "
        "Combien gagne-t-il sur cinquante kilos?",
        "50",
        "non_english",
    ),
    _row(
        "russian",
        "Найдите все натуральные числа, которые при делении на семь дают остаток три и меньше тридцати.",
        "3, 10, 17, 24",
        "non_english",
    ),
    _row("short-kept", r"Calcule $2+2$.", "4", None),
    _row(
        "keep-latex",
        r"Let $f(x) = \frac{x^2 - 1}{x - 1}$ for $x \neq 1$. Find $\lim_{x \to 1} f(x)$.",
        "2",
        None,
    ),
    _row(
        "keep-triangle",
        "Let ABC be a triangle with AB = 5, BC = 12 and CA = 13. Find the area of triangle ABC.",
        "30",
        None,
    ),
    _row("missing-answer", "What is 17 times 3?", None, "missing_answer"),
    _row("placeholder-answer", "What is 19 times 3?", "N/A", "missing_answer"),
]


def planted_rows() -> list[dict]:
    """Copies of evaluation problems: MATH-500 reformatted (exact match) and GSM8K test edited (n-gram)."""
    math500 = load_problems("math500", limit=3)
    gsm8k_test = load_problems("gsm8k", split="test", limit=3)
    exact = math500[0]["problem"].replace("  ", " ").replace("$", " $ ").strip()
    words = gsm8k_test[1]["problem"].split()
    words[3] = "pear"  # one changed word keeps most 10-grams
    return [
        _row("planted-math500", exact, math500[0]["answer"], "decontaminate", planted_from=math500[0]["id"]),
        _row(
            "planted-gsm8k",
            " ".join(words),
            gsm8k_test[1]["answer"],
            "decontaminate",
            planted_from=gsm8k_test[1]["id"],
        ),
    ]


def mixed_rows() -> list[dict]:
    return [dict(row) for row in MIXED_ROWS] + planted_rows()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
