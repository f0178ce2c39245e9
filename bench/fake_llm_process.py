"""The tests' fake language-model server (tests/fake_llm.py) in a process of its own.

    .venv/bin/python bench/fake_llm_process.py [--reply-words 40] [--delay-ms 5] [--fail-status N]

Prints its base URL as the first line of stdout, then serves until stdin closes (its parent went
away) or SIGTERM. bench/load.py runs it apart from locust, whose gevent patching would turn the
server's threads into greenlets sharing the load generator's one thread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_llm import FakeLLMServer

WORDS = "the sources say that postgres keeps vectors and text in one place [1]".split()


def reply(words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reply-words", type=int, default=40, help="words in every answer")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="between streamed pieces")
    parser.add_argument("--fail-status", type=int, help="answer every chat with this status")
    args = parser.parse_args()
    with FakeLLMServer(reply(args.reply_words)) as fake:
        fake.delay_s = args.delay_ms / 1000
        fake.fail_status = args.fail_status
        print(fake.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
