"""Workers sized from the machine: one per available core, the bundled model's batch size, the
embedded server's connections sized to serve's processes, and memory given back after a job."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass, replace

import numpy as np
import psutil
import psycopg
import pytest

from app.db import server
from app.providers.embeddings import make_embedder
from app.providers.local_embedder import INT8_MODEL_NAME, MODEL_NAME, LocalEmbedder
from app.runtime import Runtime
from app.services import job_kinds
from app.services.job_kinds import JobKind, builtin
from app.services.worker import Worker, connect
from app.settings import Settings
from tests.helpers import drain

_WORKERS_WITH_ONE_CORE = (
    "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
    "from app.settings import Settings; print(Settings.from_env({}).workers)"
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_workers_are_one_per_core_the_process_may_use_unless_given(tmp_path):
    env = {"POSTRAG_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).workers == len(os.sched_getaffinity(0))
    assert Settings.from_env({**env, "POSTRAG_WORKERS": "AUTO"}).workers == len(
        os.sched_getaffinity(0)
    )
    assert Settings.from_env({**env, "POSTRAG_WORKERS": "5"}).workers == 5
    assert Settings.from_env({**env, "POSTRAG_WORKERS": "0"}).workers == 0
    pinned = subprocess.run(
        [sys.executable, "-c", _WORKERS_WITH_ONE_CORE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env, "POSTRAG_WORKERS": "auto"},
    )
    assert pinned.stdout.strip() == "1"  # a container's cpuset, taskset: what it may use


def test_a_cgroup_cpu_quota_caps_the_cores(tmp_path):
    from app.settings_vars import cpu_quota

    quota = tmp_path / "cpu.max"
    for written, cores in [("200000 100000\n", 2), ("150000 100000", 2), ("max 100000", None)]:
        quota.write_text(written)
        assert cpu_quota(str(quota)) == cores
    assert cpu_quota(str(tmp_path / "none")) is None  # no cgroup v2 here


def test_the_bundled_model_embeds_alike_whatever_its_batch(settings):
    texts = [
        "PostgreSQL stores the vectors.",
        "A much longer chunk about ingestion workers, cores, batches and padding " * 6,
        "short",
    ]
    float32 = replace(settings, embedding_model=MODEL_NAME)
    batched = make_embedder(replace(float32, embed_batch=8))
    assert isinstance(batched, LocalEmbedder) and batched.batch_size == 8
    one_by_one = make_embedder(float32)  # POSTRAG_EMBED_BATCH's default: 1
    assert isinstance(one_by_one, LocalEmbedder) and one_by_one.batch_size == 1
    cosines = np.sum(batched.embed(texts) * one_by_one.embed(texts), axis=1)
    assert cosines.min() > 0.9999  # padding to the longest in a batch changes nothing
    # The int8 graph's vectors would depend on their batch: it embeds one text per run anyway.
    int8 = make_embedder(replace(settings, embedding_model=INT8_MODEL_NAME, embed_batch=8))
    assert isinstance(int8, LocalEmbedder) and int8.batch_size == 1


def test_serve_sizes_the_embedded_servers_connections_to_its_processes(tmp_path, caplog):
    sized = Settings.from_env(
        {"POSTRAG_DATA_DIR": str(tmp_path), "POSTRAG_WORKERS": "40", "POSTRAG_POOL_MAX_SIZE": "12"}
    )
    wanted = server.max_connections(sized, http_processes=3)
    assert wanted == 40 * 3 + 3 * (12 + 1) + server.SPARE_CONNECTIONS
    resolved = server.resolve(sized, http_processes=3)
    assert resolved.embedded is not None
    try:
        with psycopg.connect(resolved.url) as conn:
            assert conn.execute("SHOW max_connections").fetchone() == (str(wanted),)
        # Joining the running server with more processes: it keeps its limit until it starts
        # again, and says so.
        with caplog.at_level(logging.WARNING, logger="app.db.embedded"):
            server.resolve(replace(sized, workers=80), http_processes=3)
        assert f"allows {wanted} connections where {wanted + 120} are wanted" in caplog.text
    finally:
        resolved.embedded.handle.cleanup()  # this process is the last to leave: it stops it


def test_a_small_server_still_gets_postgresqls_default_connections(tmp_path):
    small = Settings.from_env({"POSTRAG_DATA_DIR": str(tmp_path), "POSTRAG_WORKERS": "2"})
    assert server.max_connections(small, http_processes=2) == 100


@dataclass(frozen=True)
class Hoard:
    megabytes: int


_PINNED: list[bytearray] = []  # small blocks kept alive between the freed ones


def _hoard(job, ctx) -> None:
    """Allocate and free heap blocks, keeping a small one after each: the allocator cannot give
    the freed ones back by shrinking its heap, as after a real job's scattered buffers."""
    blocks = []
    for _ in range(job.payload.megabytes * 16):
        blocks.append(bytearray(64 * 1024))  # under glibc's mmap threshold: from the heap
        _PINNED.append(bytearray(1024))
    del blocks


def test_a_worker_gives_back_the_memory_its_job_freed(app, database_url):
    kinds = builtin.registry()
    kind = kinds.register(JobKind(name="test_hoard", payload=Hoard, run=_hoard))
    configured = Runtime.of(app).settings
    worker = Worker(database_url, configured, Runtime.of(app).embedder, kinds=kinds)
    drain(app, worker=worker)  # the space's bookkeeping first: not part of the figures
    with connect(database_url) as conn:
        job_kinds.enqueue(conn, kind, Hoard(megabytes=300), max_attempts=1)
    before = psutil.Process().memory_info().rss
    assert drain(app, worker=worker) == 1
    grown = psutil.Process().memory_info().rss - before
    _PINNED.clear()
    assert grown < 100 * 2**20, f"{grown / 2**20:.0f} MB kept after the job"
