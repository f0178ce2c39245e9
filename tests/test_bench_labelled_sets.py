"""bench/labelled_sets.py: the BEIR directories it writes, from a dpkg status sample and the
labelled set that tests/test_search_quality.py uses."""

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_qrels(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def build(out: Path) -> str:
    command = [sys.executable, str(ROOT / "bench" / "labelled_sets.py"), str(out)]
    command += ["--dpkg-status", str(DATA / "dpkg-status-sample.txt")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_the_debian_set_pairs_each_synopsis_with_its_own_description_cut_of_it(tmp_path):
    assert "debian: 2 documents, 2 queries" in build(tmp_path)
    debian = tmp_path / "debian"
    corpus = read_jsonl(debian / "corpus.jsonl")
    # Too short (tiny), a shared description (both twins) and no description are dropped.
    assert [d["_id"] for d in corpus] == ["aardvark", "zebra-tools"]
    assert all(set(d) == {"_id", "title", "text"} and d["title"] == d["_id"] for d in corpus)
    queries = read_jsonl(debian / "queries.jsonl")
    assert queries == [
        {"_id": "aardvark", "text": "an ant-eating database engine"},
        {"_id": "zebra-tools", "text": "tools for counting zebra stripes"},
    ]
    zebra = corpus[1]["text"]
    assert zebra.startswith("Zebra-tools reads photographs of zebras")
    assert "\n\nThe package also ships" in zebra  # " ." is a paragraph break
    # The synopsis, even across a line break, is cut out of its own document.
    assert "counting zebra" not in " ".join(zebra.split()).lower()
    assert read_qrels(debian / "qrels" / "test.tsv") == [
        ["query-id", "corpus-id", "score"],
        ["aardvark", "aardvark", "1"],
        ["zebra-tools", "zebra-tools", "1"],
    ]


def test_the_workplace_set_is_the_labelled_json_with_every_relevant_document(tmp_path):
    build(tmp_path)
    labelled = json.loads((DATA / "search_labelled.json").read_text())
    workplace = tmp_path / "workplace"
    corpus = read_jsonl(workplace / "corpus.jsonl")
    assert {d["_id"]: d["text"] for d in corpus} == labelled["documents"]
    queries = read_jsonl(workplace / "queries.jsonl")
    assert [q["text"] for q in queries] == [q["query"] for q in labelled["queries"]]
    qrels = read_qrels(workplace / "qrels" / "test.tsv")
    assert qrels[0] == ["query-id", "corpus-id", "score"]
    expected = [
        [query["_id"], name, "1"]
        for query, labelled_query in zip(queries, labelled["queries"], strict=True)
        for name in labelled_query["relevant"]
    ]
    assert qrels[1:] == expected


def test_the_sets_are_the_same_on_every_run(tmp_path):
    build(tmp_path / "one")
    build(tmp_path / "two")
    for name in ("debian/corpus.jsonl", "debian/queries.jsonl", "workplace/qrels/test.tsv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
