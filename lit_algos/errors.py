"""User-facing errors: one paragraph, no traceback.

The CLI catches every ``LitAlgosError`` and prints its message alone, so anything a user can
get wrong (a recipe, a path, an unreachable hub) should raise a subclass of it.
"""

from __future__ import annotations


class LitAlgosError(Exception):
    """An error caused by user input or the environment, shown without a traceback."""


class ConfigError(LitAlgosError):
    """A recipe or override is invalid. Names the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str, *, source: str | None = None):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" (in {self.source})" if self.source else ""
        return f"Invalid config field '{self.field}'{where}: got {self.value!r}. {self.allowed}"

    def under(self, prefix: str) -> ConfigError:
        """The same error with the field path prefixed, e.g. 'attention.kind' -> 'model.attention.kind'."""
        field = f"{prefix}.{self.field}" if prefix else self.field
        return ConfigError(field, self.value, self.allowed, source=self.source)

    def in_source(self, source: str) -> ConfigError:
        return ConfigError(self.field, self.value, self.allowed, source=source)


class DataError(LitAlgosError):
    """Missing, corrupt or unreachable data (corpus, tokenizer, shard)."""


class SubmissionError(LitAlgosError):
    """A leaderboard submission was rejected; the board is unchanged."""


class StorageError(LitAlgosError):
    """A file or directory cannot be written or read (permissions, a file where a folder belongs, a full disk)."""


class LitAlgosWarning(UserWarning):
    """Something skipped but not fatal (a corrupt entry left off the board); the CLI shows it as one line."""
