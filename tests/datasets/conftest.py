"""Every dataset test runs with its own default data folder and cache location."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No test may write to the real per-user cache or data folder."""
    monkeypatch.delenv("CONDENSE_CACHE_DIR", raising=False)
    monkeypatch.setenv("CONDENSE_DATA_DIR", str(tmp_path_factory.mktemp("default-data")))
    yield
