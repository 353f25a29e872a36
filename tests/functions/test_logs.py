"""Logs are JSON lines: hostile input in a log message can no longer forge a line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import requests

from amtd.edge.logs import JsonLineFormatter
from amtd.kube.api import Cluster
from support.builders import falco_alert
from support.functions import serve_function
from support.ingesting import TOKEN, bearer, expect_token, security_events
from support.standins import open_world

FORGERY = "shell\n2026-01-01 00:00:00 ERROR forged line\x1b[2J\x1b[31m\u202eevil\r\x85"


def format_record(message: str, *args: Any, **extra: Any) -> str:
    """One record as the functions' handler writes it."""
    record = logging.LogRecord("amtd.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return JsonLineFormatter().format(record)


def test_a_record_is_one_ascii_json_line_with_its_extras() -> None:
    line = format_record("created %s for %s", FORGERY, "shop/a", step="u/1", count=2, at=Path("/"))
    assert "\n" not in line and "\r" not in line and line.isascii()
    entry = json.loads(line)
    assert entry["message"] == f"created {FORGERY} for shop/a"  # kept, escaped, not lost
    assert (entry["level"], entry["logger"]) == ("WARNING", "amtd.test")
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
    assert (entry["step"], entry["count"], entry["at"]) == ("u/1", 2, "/")
    assert "args" not in entry and "msg" not in entry and "lineno" not in entry


def test_exceptions_stay_on_the_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonLineFormatter().format(record))
    assert "ValueError: bad\nvalue" in entry["exception"]


def test_a_function_process_logs_only_json_lines(
    apiserver: Any, kubeconfig: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    expect_token(monkeypatch)
    with open_world(apiserver, kubeconfig, "ingest-falco", monkeypatch) as cluster:
        run_falco_with_a_forged_rule(apiserver, cluster, tmp_path)
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]  # each line is JSON
    created = [e for e in entries if e["logger"] == "amtd.ingest.ingesting"]
    assert len(created) == 1 and FORGERY in created[0]["message"]
    assert not any(line.startswith("2026-01-01") for line in lines)


def run_falco_with_a_forged_rule(apiserver: Any, cluster: Cluster, tmp_path: Path) -> None:
    """ingest-falco as its own process, stderr to a file; one alert whose rule forges a line."""
    identity = apiserver.write_kubeconfig(tmp_path / "falco.kubeconfig", user="ingest-falco")
    env = {"KUBECONFIG": str(identity), "INGEST_TOKEN": TOKEN, "LOG_LEVEL": "INFO"}
    with (tmp_path / "stderr.log").open("wb") as stderr, serve_function(
        "ingest-falco", env, stderr=stderr
    ) as url:  # fmt: skip
        response = requests.post(url, json=falco_alert(rule=FORGERY), headers=bearer(), timeout=20)
        assert response.status_code == 201, response.text
    assert [e["spec"]["rule"]["type"] for e in security_events(cluster)] == [FORGERY]
