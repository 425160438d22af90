"""Skill-pair generation: skills, the majority filter with a scripted generator, the HTTP backend against a
mock OpenAI-compatible server on 127.0.0.1, and `mathrl data generate` end to end."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mathrl.cli import main
from mathrl.data.generate import (
    CallableBackend,
    GenerationSettings,
    OpenAIBackend,
    generate_problems,
    majority_answer,
    parse_generated_problem,
    sample_skill_pairs,
    skills_from_labels,
    skills_from_model,
    write_generated,
)
from mathrl.data.generate.skills import parse_skill_list

# Scripted solver answers per problem: the skill pair decides which problem the generator writes.
SCRIPT = {
    ("counting", "fractions"): (
        "Problem: What fraction of the 12 months have 31 days?\nAnswer: 7/12",
        ["7/12", "7/12", "7/12", "1/2"],
    ),
    ("counting", "primes"): (
        "Problem: How many primes are there below 30?\nAnswer: 10",
        ["10", "9", "11", "8"],
    ),
    ("fractions", "primes"): (
        "Problem: What is the sum of the reciprocals of 2 and 3?\nAnswer: 5/6",
        ["5/6", "5/6", None, "5/6"],
    ),
}


def _scripted_reply(messages, n):
    content = messages[-1]["content"]
    if "combining these two skills" in content:
        skills = tuple(sorted(re.findall(r"^\d\. (.+)$", content, re.M)))
        return [SCRIPT[skills][0]] * n if skills in SCRIPT else ["I cannot think of one."] * n
    for reply, answers in SCRIPT.values():
        if parse_generated_problem(reply)[0] in content:
            return [f"Working... \\boxed{{{a}}}" if a else "no idea" for a in answers][:n]
    raise AssertionError(f"unexpected prompt: {content[:80]}")


def test_majority_answer_groups_equal_answers():
    same = lambda a, b: a.replace(" ", "") == b.replace(" ", "")  # noqa: E731
    assert majority_answer(["1/2", "1 / 2", "3", None], same) == ("1/2", 2)
    assert majority_answer([None, None], same) == (None, 0)


def test_parse_generated_problem():
    assert parse_generated_problem("Problem: Find the value of 3 squared.\nAnswer: 9") == (
        "Find the value of 3 squared.",
        "9",
    )
    assert parse_generated_problem("Problem: Find the value of 3 squared.") == (
        "Find the value of 3 squared.",
        None,
    )
    assert parse_generated_problem("Here is one: 2+2") == (None, None)


def test_skills_from_labels_and_pairs():
    records = [
        {"subject": "Algebra"},
        {"subject": "Algebra", "domain": ["Mathematics -> Number Theory -> Primes"]},
        {"type": "Geometry"},
    ]
    assert skills_from_labels(records) == ["Algebra", "Primes", "Geometry"]
    pairs = sample_skill_pairs(["a", "b", "c"], 5, seed=0)
    assert len(pairs) == 3 and len(set(pairs)) == 3 and all(x != y for x, y in pairs)
    with pytest.raises(ValueError, match="at least two distinct skills"):
        sample_skill_pairs(["a", "a"], 1)


def test_skills_from_model_scripted():
    backend = CallableBackend(lambda messages, n: ["1. modular arithmetic\n2. Counting; casework."] * n)
    records = [{"problem": "p", "solution": "s"}, {"problem": "q", "solution": "t"}, {"problem": "r"}]
    assert skills_from_model(records, backend) == ["modular arithmetic", "counting", "casework"]
    assert parse_skill_list("- Vieta's formulas, the quadratic formula") == [
        "vieta's formulas",
        "the quadratic formula",
    ]


def test_majority_filter_with_scripted_generator(tmp_path):
    backend = CallableBackend(_scripted_reply, name="scripted")
    pairs = [
        ("counting", "fractions"),
        ("counting", "primes"),
        ("fractions", "primes"),
        ("algebra", "geometry"),
    ]
    settings = GenerationSettings(samples=4, min_agreement=0.5, matcher="exact")
    kept, candidates = generate_problems(pairs, backend, backend, settings, id_prefix="t")
    by_id = {c["id"]: c for c in candidates}
    assert [c["status"] for c in candidates] == [
        "kept",
        "no majority",
        "kept",
        "no problem in the generator reply",
    ]
    assert by_id["t-0"]["agreement"] == 0.75
    assert by_id["t-1"]["agreement"] == 0.25
    assert by_id["t-2"]["agreement"] == 0.75  # a missing answer counts against agreement
    assert [(r["id"], r["answer"], r["agreement"]) for r in kept] == [
        ("t-0", "7/12", 0.75),
        ("t-2", "5/6", 0.75),
    ]
    assert kept[0]["skills"] == ["counting", "fractions"]
    assert kept[0]["generator_agrees"] is True
    assert "\\boxed{7/12}" in kept[0]["solution"]

    strict = GenerationSettings(samples=4, min_agreement=0.75, matcher="exact")
    assert generate_problems(pairs, backend, backend, strict)[0] == []

    out = write_generated(
        tmp_path / "gen",
        kept,
        candidates,
        settings,
        {"generator": "scripted", "solver": "scripted", "skills_from": "test"},
    )
    assert len((out / "problems.jsonl").read_text().splitlines()) == 2
    assert len((out / "rejected.jsonl").read_text().splitlines()) == 2
    review = (out / "review.md").read_text()
    assert "## t-1: no majority" in review
    assert "agreement 0.25" in review
    assert "**Candidates:** 4 skill pairs" in (out / "CARD.md").read_text()


def test_majority_filter_with_verifier():
    import rewards

    if not hasattr(rewards, "verify"):
        pytest.skip("the answer verifier (rewards.verify) is not merged into this tree yet")
    replies = ["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{1/2}", "\\boxed{3}"]
    backend = CallableBackend(
        lambda m, n: (
            ["Problem: What is one half as a number?\nAnswer: 1/2"] * n
            if "combining" in m[-1]["content"]
            else replies[:n]
        )
    )
    kept, _ = generate_problems(
        [("a", "b")], backend, backend, GenerationSettings(samples=4, matcher="verifier")
    )
    assert len(kept) == 1
    assert kept[0]["agreement"] == 0.75


class _MockOpenAI(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        # Like some servers, answer at most two choices per request, so the client must ask again; a
        # repeated request continues where the earlier ones for the same messages stopped.
        earlier = [r for r in type(self).requests[:-1] if r["messages"] == body["messages"]]
        start = sum(min(r.get("n", 1), 2) for r in earlier)
        n = min(body.get("n", 1), 2)
        script = _scripted_reply(body["messages"], 4)
        chosen = (script * 3)[start : start + n]
        payload = {
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": c}} for i, c in enumerate(chosen)
            ]
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def mock_endpoint():
    _MockOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MockOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_backend_asks_again_for_missing_choices(mock_endpoint):
    backend = OpenAIBackend(mock_endpoint, "mock-model")
    problem = parse_generated_problem(SCRIPT[("counting", "fractions")][0])[0]
    [replies] = backend.complete([[{"role": "user", "content": problem}]], n=4)
    assert replies == ["Working... \\boxed{7/12}"] * 3 + ["Working... \\boxed{1/2}"]
    assert [r["n"] for r in _MockOpenAI.requests] == [4, 2]
    assert _MockOpenAI.requests[0]["model"] == "mock-model"


def test_openai_backend_errors(mock_endpoint):
    with pytest.raises(RuntimeError, match="HTTP 404"):
        OpenAIBackend(mock_endpoint.replace("/v1", "/v2"), "m", max_retries=0).complete(
            [[{"role": "user", "content": "x"}]]
        )
    with pytest.raises(ValueError, match="invalid endpoint URL"):
        OpenAIBackend("127.0.0.1:80", "m")
    with pytest.raises(ValueError, match="MATHRL_TEST_UNSET_KEY is not set"):
        OpenAIBackend(mock_endpoint, "m", api_key_env="MATHRL_TEST_UNSET_KEY")


def test_generate_command_with_mock_endpoint(mock_endpoint, tmp_path, capsys):
    out = tmp_path / "generated"
    code = main(
        [
            "data",
            "generate",
            "--endpoint",
            mock_endpoint,
            "--generator",
            "mock-model",
            "--skills",
            "counting,fractions,primes",
            "--pairs",
            "3",
            "-k",
            "4",
            "--matcher",
            "exact",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "candidates": 3,
        "kept": 2,
        "output": str(out),
    }
    problems = [json.loads(line) for line in (out / "problems.jsonl").read_text().splitlines()]
    assert sorted(p["answer"] for p in problems) == ["5/6", "7/12"]
    assert all(p["source"] == "generated" for p in problems)
    assert all(p["samples"] == 4 for p in problems)
    report = json.loads((out / "report.json").read_text())
    assert report["status_counts"] == {"kept": 2, "no majority": 1}
    assert report["generator"] == mock_endpoint
    # The generated file loads as a dataset.
    from mathrl.data import load_problems

    assert len(load_problems(str(out / "problems.jsonl"))) == 2


def test_generate_command_with_tiny_preset(tmp_path, capsys):
    out = tmp_path / "tiny"
    code = main(
        [
            "data",
            "generate",
            "--generator",
            "tiny-qwen3-moe",
            "--skills-from",
            "math500",
            "--skill-records",
            "50",
            "--pairs",
            "2",
            "-k",
            "2",
            "--matcher",
            "exact",
            "--max-problem-tokens",
            "16",
            "--max-solution-tokens",
            "8",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["candidates"] == 2
    assert sum(report["status_counts"].values()) == 2
    assert len(report["skills"]) >= 2  # MATH-500 subjects
    assert (out / "review.md").is_file()
    assert (out / "CARD.md").is_file()
