"""Phone numbers and order ids never reach a log line in the clear."""

from __future__ import annotations

import logging

from kefu.stack.logs import MaskingFilter, install_masking, mask


def test_phones_and_order_ids_are_masked():
    line = "callback 13800138000 for order 2023112500123456 and JD20231118001 (ok: 12345)"
    assert mask(line) == "callback 138****8000 for order 202****456 and JD****001 (ok: 12345)"


def test_the_filter_masks_formatted_records():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "lookup %s failed", ("JD20231118001",), None
    )
    assert MaskingFilter().filter(record) and record.getMessage() == "lookup JD****001 failed"


def test_install_puts_the_filter_on_every_root_handler_once():
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_masking()
        install_masking()
        assert sum(isinstance(f, MaskingFilter) for f in handler.filters) == 1
    finally:
        root.removeHandler(handler)
