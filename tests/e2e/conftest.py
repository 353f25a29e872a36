"""One embedded stack for all end-to-end tests; each test works in its own namespace.

A failing test's report carries the end of every function's log (state_dir/logs/<name>.log).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from support.stacks import LiveStack, run_stack


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The running stack (API stand-in, Broker, sources, every function), started once."""
    with run_stack(tmp_path_factory.mktemp("e2e-state")) as running:
        yield running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the function logs to the report of a failed e2e test."""
    report = yield
    running = getattr(item, "funcargs", {}).get("live")
    if report.failed and isinstance(running, LiveStack):
        report.sections.append(("function logs", running.log_tails()))
    return report
