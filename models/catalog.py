"""What the catalog says about each bundle item right now: in stock, category, title.

The server keeps this view current as the store updates its catalog; ranking reads it
to drop unavailable items and to filter by category, without touching Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

NO_CATEGORY = -1


@dataclass
class CatalogView:
    """Per bundle item index: availability, category code and display fields."""

    available: npt.NDArray[np.bool_]
    category_codes: npt.NDArray[np.int32]
    category_names: list[str]
    items: list[dict[str, Any]]
    _codes: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._codes = {name: code for code, name in enumerate(self.category_names)}

    @classmethod
    def from_items(cls, items: list[dict[str, Any]]) -> CatalogView:
        names: dict[str, int] = {}
        codes = np.full(len(items), NO_CATEGORY, dtype=np.int32)
        for i, item in enumerate(items):
            category = item.get("category")
            if category:
                codes[i] = names.setdefault(category, len(names))
        available = np.array([bool(item.get("in_stock", True)) for item in items], dtype=bool)
        return cls(available, codes, list(names), [dict(item) for item in items])

    def update(self, index: int, item: dict[str, Any]) -> None:
        """Apply a live catalog change to the item at `index`."""
        merged = {**self.items[index], **item}
        self.items[index] = merged
        self.available[index] = bool(merged.get("in_stock", True))
        category = merged.get("category")
        self.category_codes[index] = self.code_of(category) if category else NO_CATEGORY

    def code_of(self, category: str) -> int:
        """The category's code, registering a category the bundle has not seen."""
        if category not in self._codes:
            self._codes[category] = len(self.category_names)
            self.category_names.append(category)
        return self._codes[category]

    def find_code(self, category: str) -> int | None:
        return self._codes.get(category)

    def title(self, index: int) -> str:
        return str(self.items[index].get("title") or self.items[index]["item_id"])

    def category(self, index: int) -> str | None:
        code = int(self.category_codes[index])
        return self.category_names[code] if code != NO_CATEGORY else None
