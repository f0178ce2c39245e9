"""Labelled retrieval sets in BEIR's format, built from what this machine has (no download).

    .venv/bin/python bench/labelled_sets.py OUT_DIR [--dpkg-status /var/lib/dpkg/status]

Writes one BEIR directory per set (`corpus.jsonl` with _id/title/text, `queries.jsonl` with
_id/text, `qrels/test.tsv` with the header `query-id<TAB>corpus-id<TAB>score`), which
`postrag eval import-beir DIR` and bench/tune.py read. The output depends only on the inputs.

- OUT_DIR/workplace: tests/data/search_labelled.json (36 short synthetic workplace documents, 30
  questions, each with the documents that answer it at grade 1); document ids are the file
  names, titles empty (as tests/test_search_quality.py uploads them: the file name is the title).
- OUT_DIR/debian: a known-item set from the dpkg status file's package descriptions. Document:
  the package's long description (its `Description:` continuation lines, ` .` lines as paragraph
  breaks), titled with the package name. Query: the package's synopsis (the `Description:` first
  line); every occurrence of it (ignoring case and line breaks) is cut out of the document, so a
  query is never found verbatim in its answer. Packages are dropped when their document is
  shorter than --min-chars after that cut, or when another package has the same name, document or
  synopsis (ignoring case and spacing: the answer would be ambiguous). The one relevant document
  of a query is its own package's, grade 1.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKPLACE = ROOT / "tests" / "data" / "search_labelled.json"


@dataclass(frozen=True)
class BeirSet:
    corpus: list[dict[str, str]]  # _id, title, text
    queries: list[dict[str, str]]  # _id, text
    qrels: list[tuple[str, str, int]]  # query-id, corpus-id, score


@dataclass(frozen=True)
class Package:
    name: str
    synopsis: str
    description: str  # the long description, paragraphs separated by a blank line


def parse_dpkg_status(text: str) -> list[Package]:
    """Every stanza with a Description, in file order."""
    packages = []
    for stanza in re.split(r"\n\s*\n", text):
        name, synopsis, lines, in_description = "", "", [], False
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")):
                if in_description:
                    lines.append("" if line.strip() == "." else line.strip())
                continue
            in_description = line.startswith("Description:")
            if line.startswith("Package:"):
                name = line.partition(":")[2].strip()
            elif in_description:
                synopsis = line.partition(":")[2].strip()
        if name and synopsis:
            description = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
            packages.append(Package(name, synopsis, description))
    return packages


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def debian_set(status_text: str, min_chars: int = 100) -> BeirSet:
    """The known-item set: a package's synopsis finds its own long description."""
    kept = []
    for package in parse_dpkg_status(status_text):
        verbatim = r"\s+".join(map(re.escape, package.synopsis.split()))
        cut = re.sub(verbatim, " ", package.description, flags=re.IGNORECASE)
        text = re.sub(r"[ \t]{2,}", " ", cut).strip()
        if len(text) >= min_chars:
            kept.append(Package(package.name, package.synopsis, text))
    names = Counter(p.name for p in kept)
    texts = Counter(_key(p.description) for p in kept)
    synopses = Counter(_key(p.synopsis) for p in kept)
    unique = [
        p
        for p in sorted(kept, key=lambda p: p.name)
        if (names[p.name], texts[_key(p.description)], synopses[_key(p.synopsis)]) == (1, 1, 1)
    ]
    return BeirSet(
        corpus=[{"_id": p.name, "title": p.name, "text": p.description} for p in unique],
        queries=[{"_id": p.name, "text": p.synopsis} for p in unique],
        qrels=[(p.name, p.name, 1) for p in unique],
    )


def workplace_set(labelled: dict[str, Any]) -> BeirSet:
    """tests/data/search_labelled.json as a BEIR set (queries numbered in file order)."""
    queries = [{"_id": f"q{i:02d}", "text": q["query"]} for i, q in enumerate(labelled["queries"])]
    return BeirSet(
        corpus=[{"_id": n, "title": "", "text": t} for n, t in labelled["documents"].items()],
        queries=queries,
        qrels=[
            (f"q{i:02d}", name, 1)
            for i, q in enumerate(labelled["queries"])
            for name in q["relevant"]
        ],
    )


def write_beir(beir: BeirSet, directory: Path) -> None:
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", beir.corpus), ("queries.jsonl", beir.queries)):
        lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
        (directory / name).write_text("".join(lines), encoding="utf-8")
    qrels = ["query-id\tcorpus-id\tscore\n"] + [f"{q}\t{c}\t{s}\n" for q, c, s in beir.qrels]
    (directory / "qrels" / "test.tsv").write_text("".join(qrels), encoding="utf-8")


def read_beir(directory: Path) -> BeirSet:
    """A BEIR directory as written above (qrels/test.tsv)."""

    def rows(name: str) -> list[dict[str, str]]:
        text = (directory / name).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    lines = (directory / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    qrels = [(q, c, int(s)) for q, c, s in (line.split("\t") for line in lines if line)]
    return BeirSet(rows("corpus.jsonl"), rows("queries.jsonl"), qrels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dpkg-status", type=Path, default=Path("/var/lib/dpkg/status"))
    parser.add_argument("--labelled", type=Path, default=WORKPLACE)
    parser.add_argument("--min-chars", type=int, default=100)
    args = parser.parse_args()
    sets = {
        "workplace": workplace_set(json.loads(args.labelled.read_text(encoding="utf-8"))),
        "debian": debian_set(args.dpkg_status.read_text(encoding="utf-8"), args.min_chars),
    }
    for name, beir in sets.items():
        write_beir(beir, args.out_dir / name)
        print(f"{args.out_dir / name}: {len(beir.corpus)} documents, {len(beir.queries)} queries")


if __name__ == "__main__":
    main()
