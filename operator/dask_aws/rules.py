"""Cross-field rules kept as one table, read by pydantic and by the CRD alike.

A rule is one row: the CEL expression the API server evaluates at `kubectl apply`
(`x-kubernetes-validations`), the Python check pydantic runs for the library and the
operator, and the message both report. Writing each rule once is what keeps the two
sides from drifting apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from dask_aws.camel import CamelModel

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Rule(Generic[M]):
    """One rule about objects of `model`; `check` is the Python twin of `cel`."""

    model: type[M]
    message: str
    check: Callable[[M], bool]  # True when the object obeys the rule, as CEL's `rule`
    cel: str | None = None  # None: CEL cannot say it cheaply, so only Python enforces it
    field_path: str | None = None  # where the API server reports it, relative to `model`
    # CEL messages are fixed text; Python can name the values at fault instead.
    explain: Callable[[M], str] | None = None

    def error(self, obj: M) -> str | None:
        if self.check(obj):
            return None
        return self.explain(obj) if self.explain else self.message

    def validation(self) -> dict[str, str]:
        """The `x-kubernetes-validations` entry; only for rows with `cel`."""
        if self.cel is None:
            raise ValueError(f"{self.message!r} has no CEL expression")
        entry = {"rule": self.cel, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


def validations(table: Iterable[Rule[Any]], model: type[BaseModel]) -> list[dict[str, str]]:
    """The CEL rows about `model`, in table order."""
    return [r.validation() for r in table if r.model is model and r.cel is not None]


def enforce(obj: M, table: Iterable[Rule[Any]]) -> M:
    """Raise one ValueError naming every broken rule about `obj` (pydantic reports it)."""
    errors = [e for r in table if r.model is type(obj) and (e := r.error(obj))]
    if errors:
        raise ValueError("; ".join(errors))
    return obj


def _cel(schema: dict[str, Any], model: type[Any]) -> None:
    """pydantic's schema hook: the model's CEL rows, where its schema lands."""
    found = validations(model.rule_table(), model)
    if found:
        schema["x-kubernetes-validations"] = found


class Ruled(CamelModel):
    """A model whose cross-field rules are rows of a table (`rule_table`, the module's
    RULES), read by pydantic and, as CEL, by the API server."""

    model_config = ConfigDict(json_schema_extra=_cel)

    @classmethod
    def rule_table(cls) -> Iterable[Rule[Any]]:
        return ()

    @model_validator(mode="after")
    def _rules(self) -> Self:
        return enforce(self, self.rule_table())
