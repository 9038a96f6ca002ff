"""--executor ray writes the same bytes as the local executor (one local Ray for the module)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.runner import run
from tests.test_workers import CONFIG, assert_same, write_pages

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]'): Ray executor not tested")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A small local Ray; its temp folder is short, as Unix socket paths must stay under 108 chars."""
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024, _temp_dir=temp,
             log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous


def test_ray_and_local_write_the_same_bytes(local_ray: None, tmp_path: Path) -> None:
    pages = write_pages(tmp_path / "pages", 2, seed=7)
    config = load_config(CONFIG)
    run(config, pages, tmp_path / "local", progress=False, workers=1, cache=False)
    run(config, pages, tmp_path / "ray", progress=False, executor="ray", cache=False)
    assert_same(tmp_path / "local", tmp_path / "ray")
    assert ray.is_initialized(), "a Ray the caller started is left running"


def test_missing_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.executors import make_executor

    monkeypatch.setattr("pipeline.executors.ray.ray", None)
    with pytest.raises(InputError, match=r"pip install '\.\[ray\]'"):
        make_executor("ray", 2)
