"""What one test does to the process's logging does not reach the tests after it (tests/conftest.py).

`miaodai serve` run through CliRunner configures logging onto the runner's stderr, closed when the command
returns; every later test of the process then printed a "Logging error" traceback for each record. The two
tests run in this order, in one process (pytest-xdist hands a whole file to one worker).
"""

from __future__ import annotations

import io
import logging

from miaodai.core.logging import configure_logging


def test_a_test_leaves_logging_on_a_stream_that_is_then_closed():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    logging.getLogger("miaodai.isolation").info("while the test runs")
    assert "while the test runs" in stream.getvalue()
    stream.close()  # as CliRunner closes its stderr


def test_the_next_test_logs_without_a_logging_error(capfd):
    logging.getLogger("miaodai.isolation").warning("in the next test")
    assert "Logging error" not in capfd.readouterr().err
