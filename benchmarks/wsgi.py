"""WSGI entry point for gunicorn: the benchmark app of one variant, chosen by environment.

``BENCH_VARIANT`` (see ``variants.VARIANTS``), ``BENCH_BACKEND`` (``sqlite`` or ``mysql``)
and ``BENCH_URL`` (the variant's database) select it; ``BENCH_POOL_SIZE`` sets the pool size.
"""

from __future__ import annotations

import os

from variants import make_app

_pool_size = os.environ.get("BENCH_POOL_SIZE")
app = make_app(
    os.environ["BENCH_VARIANT"],
    os.environ["BENCH_BACKEND"],
    os.environ["BENCH_URL"],
    pool_size=int(_pool_size) if _pool_size else None,
).app
