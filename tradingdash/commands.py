"""Argument types for management commands: a number out of range is refused by the parser, naming the option
and its range (CommandError from call_command, a usage error on the command line), never left to reach the
database as an IntegrityError traceback or to be replaced silently by a default."""

from __future__ import annotations

import argparse
from collections.abc import Callable

# The API's bound for a sync's `days` (market/api/serializers.py): a hundred years.
MAX_DAYS = 36500


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse `type`: a whole number from `low` to `high` (no upper bound when None)."""
    allowed = f"from {low} to {high}" if high is not None else f"at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({allowed})") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: {allowed}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its own messages
    return parse
