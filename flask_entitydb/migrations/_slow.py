"""Saying what a long step of ``flask db migrate`` / ``flask db lint`` is doing once it has
taken more than a second (one line on the ``flask_entitydb`` logger, shown on stderr
when the application configures no logging)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("flask_entitydb")

SLOW_AFTER = 1.0
"""Seconds after which a step still running is named."""


@contextmanager
def slow_step(what: str) -> Iterator[None]:
    """Log ``Still <what> ...`` if the block is still running after :data:`SLOW_AFTER`
    seconds; nothing when it ends sooner."""
    after = SLOW_AFTER
    timer = threading.Timer(after, log.warning, args=("Still %s (%.0f s so far) ...", what, after))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
