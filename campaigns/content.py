"""Dynamic content: the blocks a slot shows a person, with values filled in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from campaigns.config import Campaigns, ContentBlock

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def choose_content(
    campaigns: Campaigns,
    slot: str,
    segments: frozenset[str],
    facts: Mapping[str, Any],
    limit: int,
) -> list[dict[str, Any]]:
    """Blocks for `slot` targeted at the person, highest priority first."""
    chosen = []
    blocks = sorted(campaigns.content, key=lambda block: -block.priority)
    for block in blocks:
        if block.slot != slot or (block.segments and not segments & set(block.segments)):
            continue
        values = _values(block, facts, SYMBOLS.get(campaigns.currency, ""))
        if values is None:
            continue
        chosen.append(
            {
                "block_id": block.id,
                "slot": block.slot,
                "title": block.title,
                "text": block.template.format_map(values),
                "link": block.link,
                "priority": block.priority,
            }
        )
        if len(chosen) == limit:
            break
    return chosen


def _values(block: ContentBlock, facts: Mapping[str, Any], symbol: str) -> dict[str, str] | None:
    """Template values, or None when the block has nothing true to say (already free)."""
    cart = float(facts.get("cart_value") or 0.0)
    values = {
        "cart_value": f"{symbol}{cart:.2f}",
        "loyalty_points": str(facts.get("loyalty_points", 0)),
        "loyalty_tier": str(facts.get("loyalty_tier", "")),
        "loyalty_label": str(facts.get("loyalty_label", "")),
        "orders": str(facts.get("orders", 0)),
        "lifetime_value": f"{symbol}{float(facts.get('lifetime_value') or 0):.2f}",
        "first_name": str(facts.get("first_name") or "there"),
    }
    if block.free_shipping_threshold is not None:
        left = block.free_shipping_threshold - cart
        if "{amount_to_free_shipping}" in block.template and (left <= 0 or cart <= 0):
            return None
        values["amount_to_free_shipping"] = f"{symbol}{max(left, 0):.2f}"
        values["free_shipping_threshold"] = f"{symbol}{block.free_shipping_threshold:.2f}"
    elif "{amount_to_free_shipping}" in block.template:
        return None
    return values
