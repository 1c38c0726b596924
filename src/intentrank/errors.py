"""Errors raised at the project's boundaries (CLI, HTTP, file loaders, config).

Every error a user can cause is an :class:`IntentRankError` whose message names the problem
(the file, the field, the value), so callers never see a traceback from deep inside a library.
"""

from __future__ import annotations


class IntentRankError(ValueError):
    """A problem with the user's input, data or configuration, described in plain words."""


class DataError(IntentRankError):
    """A data file or event set is missing, malformed or inconsistent."""


class ConfigError(IntentRankError):
    """A configuration value is invalid."""
