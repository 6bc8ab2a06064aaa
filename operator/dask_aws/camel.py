"""The base model: camelCase on the wire (Kubernetes style), snake_case in Python."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire(self) -> dict[str, object]:
        """The Kubernetes form: camelCase keys, plain JSON values."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
