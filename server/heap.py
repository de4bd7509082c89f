"""The garbage collector, set for a server whose heap is mostly long-lived.

A worker keeps its model bundle and catalog (for a large store, millions of objects)
for hours, while each request makes thousands of short-lived ones: a 1,000-event batch
builds its validated events, ops and stream records. With CPython's defaults a
collection runs every 700 allocations, and the older generations' passes walk the
long-lived heap again and again: a fifth of a worker's CPU under batch ingestion
(docs/performance.md). Freezing what is loaded takes it out of the collector's passes
(reference counting still frees it), and a larger young generation collects less often.
"""

from __future__ import annotations

import gc

# Allocations between young collections, then young collections between passes over the
# middle generation, and middle passes between passes over the oldest (defaults: 700, 10,
# 10). A 1,000-event batch allocates some tens of thousands of objects.
THRESHOLDS = (20_000, 20, 20)


def tune_for_serving() -> tuple[int, int, int]:
    """At startup, once the long-lived state is loaded: collect what startup left
    behind (frozen objects are never collected), freeze the rest, and collect less
    often from now on. Returns the thresholds it replaced, for `release`."""
    previous = gc.get_threshold()
    gc.unfreeze()  # a bundle loaded during startup froze early
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return previous


def freeze_loaded() -> None:
    """After a new bundle is loaded: out of the collector's passes with the rest.

    No collection first: with a million-item bundle it would pause the event loop
    under load, and the few cycles pending at that moment are all a rare swap keeps."""
    gc.freeze()


def release(thresholds: tuple[int, int, int]) -> None:
    """At shutdown: back to the collector's passes, so that a process running several
    apps in turn (the tests) frees each one's cycles."""
    gc.unfreeze()
    gc.set_threshold(*thresholds)
