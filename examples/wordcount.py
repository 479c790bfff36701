"""Example workflow: word statistics over a set of generated documents.

Run it twice; the second run is served from the cache:

    cascade run examples/wordcount.py:pipeline
    cascade run examples/wordcount.py:pipeline

Make it fail on purpose, then resume with the command it prints, the cause fixed
(``fail=false``): only the failed task runs again.

    cascade run examples/wordcount.py:pipeline --param fail=true
    cascade run examples/wordcount.py:pipeline --param fail=false --run-id <the printed run id>
"""

from __future__ import annotations

import random
import time
from collections import Counter

import cascade_core as cs

fail = cs.Param("fail", default=False, type=bool)

WORDS = ["river", "stone", "cloud", "ember", "willow", "lantern", "harbor", "meadow", "falcon", "cedar"]


@cs.task(cache=True)
def fetch(doc_id: int) -> str:
    """Pretend to download a document (slow, so the cache is worth having)."""
    time.sleep(0.2)
    rng = random.Random(doc_id)
    return " ".join(rng.choice(WORDS) for _ in range(200))


@cs.task(cache=True)
def count_words(text: str) -> dict[str, int]:
    return dict(Counter(text.split()))


@cs.task
def merge(counts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for item in counts:
        total.update(item)
    return dict(total)


@cs.task(retries=1, retry_delay=0.1)
def report(totals: dict[str, int], fail: bool) -> str:
    if fail:
        raise RuntimeError("failing on purpose: resume with --param fail=false")
    top = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:3]
    return ", ".join(f"{word}={count}" for word, count in top)


def pipeline(n: int = 8) -> cs.LazyResult[str]:
    """The graph: fetch each document, count its words, merge, report the top three."""
    return report(merge([count_words(fetch(i)) for i in range(n)]), fail)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    store = "sqlite:///.cascade-example.db"
    for attempt in (1, 2):
        started = time.perf_counter()
        result = cs.run(pipeline(), state_backend=store, cache_backend=store)
        print(f"run {attempt}: {result} in {time.perf_counter() - started:.2f}s")
