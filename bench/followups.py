"""Follow-up benchmark (issue 22): what making a follow-up standalone costs per chat turn.

    .venv/bin/python bench/followups.py [--queries 200] [--delay-ms 5] [--reply-words 40]

The tests' fake language model runs in a process of its own (bench/fake_llm_process.py: Ollama's
protocol over loopback HTTP, --delay-ms between streamed pieces; its rewrite is the question's
own words, so about as long as a real standalone query). For each follow-up of a made-up
conversation, in an order that changes from turn to turn so that drift hits all alike: the
offline rule (POSTRAG_CHAT_FOLLOWUPS=rule), the chat model's rewrite (=model: one bounded
streamed call), and, as the baseline, the answer the same model streams for the turn
(--reply-words words). All go through app/services (followups.standalone, answering.generate).
Prints p50/p95 of each and the ratios to the answer's time from the same run. No database: the
rewrite happens before retrieval.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.providers.llm import LLMClients  # noqa: E402
from app.services import answering, followups, prompting  # noqa: E402
from app.settings import Settings  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
TARGET = answering.ChatTarget("ollama", "fake-chat", 8192)
FIRST = [
    "What is the refund policy for damaged parcels?",
    "How does the gateway rotate its signing keys?",
    "Which valves does the operator check after a storm?",
    "When does the nightly export of the audit log run?",
]
FOLLOW_UPS = ["And how long does it take?", "What about the exceptions?", "Who approves that?"]
ANSWER = "The sources say it is handled within two weeks by the team on duty [1]."


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples):8.3f} ms, p95 {cuts[18]:8.3f} ms"


def fake_llm(args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [sys.executable, str(BENCH_DIR / "fake_llm_process.py")]
    command += ["--reply-words", str(args.reply_words), "--delay-ms", str(args.delay_ms)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def clients(url: str, way: str) -> LLMClients:
    base = Settings.from_env({**os.environ, "POSTRAG_DATA_DIR": tempfile.mkdtemp()})
    settings = replace(base, llm="ollama", ollama_url=url, chat_followups=way)
    return LLMClients(settings, "ollama")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def answer(llm: LLMClients, history: list[dict[str, str]], question: str) -> None:
    prompt = prompting.build_prompt(
        system_prompt="",
        sources=[],
        history=history,
        question=question,
        context_tokens=TARGET.context_length,
        answer_tokens=1024,
    )
    for piece in answering.generate(llm, TARGET, prompt, temperature=0.2, max_tokens=1024):
        if piece.done:
            return


def run(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    rng = random.Random(22)
    ruled, modelled = clients(url, "rule"), clients(url, "model")
    times: dict[str, list[float]] = {"rule": [], "model": [], "answer": []}
    for turn in range(args.queries):
        history = [
            {"role": "user", "content": rng.choice(FIRST)},
            {"role": "assistant", "content": ANSWER},
        ]
        question = rng.choice(FOLLOW_UPS)
        steps: dict[str, Callable[[], object]] = {
            "rule": partial(followups.standalone, ruled, TARGET, history, question),
            "model": partial(followups.standalone, modelled, TARGET, history, question),
            "answer": partial(answer, modelled, history, question),
        }
        order = list(steps)
        rng.shuffle(order)
        for name in order:
            times[name].append(timed(steps[name]))
        if turn == 0:  # what each way searches with, to show it ran as meant
            for way, llm in (("rule", ruled), ("model", modelled)):
                found = followups.standalone(llm, TARGET, history, question)
                assert found.how == way, found
                print(f"{way}: {question!r} -> {found.query!r}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200, help="follow-ups asked")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="fake model: between pieces")
    parser.add_argument("--reply-words", type=int, default=40, help="fake model: answer words")
    args = parser.parse_args()
    process = fake_llm(args)
    try:
        url = process.stdout.readline().strip() if process.stdout else ""
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake LLM server did not start (it printed {url!r})")
        times = run(url, args)
    finally:
        process.terminate()
        process.wait()
    base = statistics.median(times["answer"])
    print(f"{args.queries} follow-ups; fake model: {args.delay_ms:g} ms between streamed pieces")
    print(f"offline rule:        {percentiles(times['rule'])}   {times_of(times['rule'], base)}")
    print(f"model rewrite:       {percentiles(times['model'])}   {times_of(times['model'], base)}")
    print(f"answer (baseline):   {percentiles(times['answer'])}")


def times_of(samples: list[float], base: float) -> str:
    return f"x{statistics.median(samples) / base:.4f} of the answer (p50)"


if __name__ == "__main__":
    main()
