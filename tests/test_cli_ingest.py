"""`postrag ingest` on worker processes: their work, the progress it shows, e-mail attachments
waited for, and a clean stop on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess

import psutil
import psycopg

from tests.format_files import eml_bytes
from tests.helpers import POSTRAG, run, wait_for


def _long_text(topic: str, sentences: int) -> str:
    return " ".join(f"Sentence {i} about the {topic} of birds." for i in range(sentences))


def test_ingest_on_two_processes_shows_each_files_stage_chunks_and_time_left(
    cli_env, tmp_path, database_url
):
    folder = tmp_path / "birds"
    folder.mkdir()
    topics = ("migration", "song", "plumage", "nesting")
    for topic in topics:
        (folder / f"{topic}.txt").write_text(_long_text(topic, 400))
    env = {**cli_env, "CI": "true"}
    result = run(
        "ingest", str(folder), "--collection", "birds", "--processes", "2", env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "indexed 4, unchanged 0, failed 0, skipped 0" in result.stdout
    progress = result.stderr
    # Each file's stage, its chunks embedded of its total, and the process at work on it.
    at_work = re.findall(
        r"^\S+/(\w+)\.txt: embedding, chunks (\d+)/(\d+) \((worker \d)\)$", progress, re.MULTILINE
    )
    assert {name for name, *_ in at_work} <= set(topics) and at_work, progress
    assert all(int(done) <= int(total) for _, done, total, _ in at_work)
    assert {worker for *_, worker in at_work} == {"worker 1", "worker 2"}, progress
    indexed = re.findall(r"^\S+/(\w+)\.txt: indexed, chunks (\d+)/\2$", progress, re.MULTILINE)
    assert sorted(name for name, _ in indexed) == sorted(topics), progress
    # The folder's line: files done, chunks, and an estimate of the time left.
    assert re.search(
        r"^\d/4 files, chunks \d+/\d+\+?, [\d.]+ chunks/s, ETA \d+:\d\d$", progress, re.M
    )
    with psycopg.connect(database_url) as conn:
        chunks = conn.execute("SELECT count(*) FROM document_chunks").fetchone()[0]
        states = conn.execute("SELECT state, count(*) FROM jobs GROUP BY 1").fetchall()
    last = progress.rstrip().splitlines()[-1]
    assert last.startswith(f"4/4 files, chunks {chunks}/{chunks}, "), progress
    assert states == [("succeeded", 4)]


def test_ingest_waits_for_an_emails_attachments_and_counts_them(cli_env, tmp_path, database_url):
    mail = tmp_path / "kiln.eml"
    mail.write_bytes(eml_bytes([("tools.csv", "text/csv", b"Tool,Use\nsieve,slip\n")]))
    result = run("ingest", str(mail), "--collection", "mail", "--processes", "1", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "indexed 2, unchanged 0, failed 0, skipped 0" in result.stdout
    assert "e-mail attachments: 1 (indexed 1, failed 0)" in result.stdout
    assert f"{mail} > tools.csv: indexed" in result.stderr
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT filename, status FROM documents ORDER BY id").fetchall()
    assert rows == [("kiln.eml", "indexed"), ("tools.csv", "indexed")]


def test_ctrl_c_stops_the_worker_processes_and_queues_the_job_again(
    cli_env, tmp_path, database_url
):
    long = tmp_path / "long.txt"
    # Long enough (about 1,000 chunks, a minute of embedding here) for the interrupt to come
    # while its ranges are embedded, however loaded the machine.
    long.write_text(_long_text("migration", 20000))
    cli = subprocess.Popen(
        [POSTRAG, "ingest", str(long), "--collection", "long", "--processes", "2"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            wait_for(
                lambda: conn.execute(
                    "SELECT 1 FROM documents WHERE status = 'embedding'"
                ).fetchone(),
                "the document was never embedded",
                timeout=120,
            )
        children = psutil.Process(cli.pid).children(recursive=True)
        assert len([c for c in children if "worker" in c.cmdline()]) == 2
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 1, stderr  # click's "Aborted!"
    # The workers' forkservers (file reading) end just after them.
    _, left = psutil.wait_procs(children, timeout=15)
    assert not left, [c.cmdline() for c in left]
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute(
            "SELECT state, lease_owner FROM jobs WHERE state <> 'succeeded'"
        ).fetchall()
        status = conn.execute("SELECT status FROM documents").fetchone()
    # What was left to do waits for the next worker: the document's job, or (a document split
    # into ranges, app/services/ingestion_split.py) the ranges not embedded yet.
    assert jobs and set(jobs) == {("queued", None)}
    assert status in (("queued",), ("embedding",))


def test_time_left_counts_chunked_files_and_guesses_the_others_from_their_size():
    from app.services.ingest_progress import Estimator, FileProgress, FolderProgress

    chunked = FileProgress("a.txt", "embedding", 10, 40, 4000)  # 30 left, 1 chunk per 100 bytes
    done = FileProgress("b.txt", "indexed", 20, 20, 2000)
    unread = FileProgress("c.txt", "queued", 0, None, 3000)  # about 30 chunks
    failed = FileProgress("d.txt", "failed", 0, None, 9000)  # nothing left to do
    estimator = Estimator()
    first = estimator.estimate(FolderProgress(4, 1, (chunked, done, unread, failed)), 100.0)
    assert (first.chunks_per_s, first.seconds_left) == (None, None)  # no rate yet
    later = FileProgress("a.txt", "embedding", 30, 40, 4000)  # 20 more chunks in 10 s: 2/s
    folder = FolderProgress(4, 1, (later, done, unread, failed))
    estimated = estimator.estimate(folder, 110.0)
    assert estimated.chunks_per_s == 2.0
    assert estimated.seconds_left == (10 + 30) / 2.0
    nothing_chunked = FolderProgress(1, 0, (unread,))
    assert Estimator().estimate(nothing_chunked, 0.0).seconds_left is None
