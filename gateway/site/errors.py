"""Problems found in a site file, and the one exception that carries all of them."""
from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import GatewayError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a site file.

    file: the path (or the name given to parse_site); line: 1-based line of the offending table
    or key, best effort, None when unknown; key: the key path, e.g. ``zones[12].polygon``;
    why: a sentence for the person editing the file.
    """

    file: str
    line: int | None
    key: str
    why: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key}: {self.why}"


class SiteError(GatewayError):
    """A site file was refused. `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
