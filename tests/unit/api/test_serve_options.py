"""``yizhang serve``'s uvicorn settings (issue 21): a worker is given time to start on a busy machine.

uvicorn's supervisor kills a worker that does not answer its ping within ``timeout_worker_healthcheck``,
also while the worker is still starting. With uvicorn's 5 s default, on a loaded 2-core machine every
replacement worker was killed before it served (``Child process [...] died`` in a loop; found by
``bench/bench_verify_served_hostile.py``) and the service ran on one worker.
"""

from __future__ import annotations

import uvicorn

from api.cli._serve import uvicorn_options


def test_workers_get_a_minute_to_start_or_answer() -> None:
    config = uvicorn.Config(**uvicorn_options("127.0.0.1", 8000, 2, "127.0.0.1", "info"))
    assert config.timeout_worker_healthcheck >= 60
    assert config.workers == 2 and config.proxy_headers and config.forwarded_allow_ips == "127.0.0.1"
