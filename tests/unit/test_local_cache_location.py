"""The local task cache lives beside the run history, never in it.

Run ids name the history's files and folders (``<pipeline>/<run id>.json``, a triggered
run's ``runId`` is the author's), so a cache file among them could be overwritten by
a run with the id ``cache`` and would be listed by anything reading the history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kascade.engine.caching import CacheEntry
from kascade.local.cache import LocalCache, cache_folder
from kascade.local.history import LocalHistory

NOW = datetime(2024, 1, 15, tzinfo=UTC)


def test_a_run_with_the_id_cache_leaves_the_task_cache_alone(tmp_path: Path) -> None:
    history = LocalHistory(tmp_path / "local-runs")
    entry = CacheEntry(
        task="fetch",
        key="rates-EUR",
        outputs={"rate": 1.3},
        created=NOW,
        expires=NOW + timedelta(days=1),
        run_id="manual__2024-01-15T00:00:00+00:00",
    )
    LocalCache(cache_folder(history.root, "rates")).keep([entry], NOW)
    history.save({"pipeline": "rates", "runId": "cache", "ref": "cache", "phase": "success"})

    again = LocalCache(cache_folder(history.root, "rates"))
    kept = again.get("fetch", "rates-EUR", NOW)
    assert kept is not None and dict(kept.outputs) == {"rate": 1.3}
    assert [r["runId"] for r in history.records("rates")] == ["cache"]
    assert history.root not in cache_folder(history.root, "rates").parents
