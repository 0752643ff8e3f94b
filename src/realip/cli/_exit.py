"""Exit statuses shared by every subcommand."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1  # bad input, a refused or failed operation, a finding at --fail-on
    USAGE = 2  # bad flags, unreadable input for commands that reserve 1 for findings
    UNREACHABLE = 3  # probe/send: the endpoint could not be reached
    UNCLEAR = 4  # probe: the answers do not decide
    INTERRUPTED = 130
