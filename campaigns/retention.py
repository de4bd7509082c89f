"""Customer retention rate per month, as the product brief defines it.

CRR = (E - N) / B x 100, where B is the customers at the start of the month, E at its
end and N the new customers acquired during it. A customer "is" a customer while they
have ordered within the last `active_months` months (six by default: the brief's
lapsed customer has not ordered in six months), so B and E move as people come and go.
Inputs are the per-month buyer counts Redis keeps; nothing here touches Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_ACTIVE_MONTHS = 6


def month_of(timestamp: float) -> str:
    """'YYYY-MM' in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m")


def shift_month(month: str, delta: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + (number - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_ending(month: str, count: int) -> list[str]:
    """`count` months up to and including `month`, oldest first."""
    return [shift_month(month, delta) for delta in range(1 - count, 1)]


@dataclass(frozen=True)
class MonthWindows:
    """The buyer months whose union is B and E for one reported month."""

    month: str
    start: list[str]  # active at the start: ordered in the months before this one
    end: list[str]  # active at the end: ordered in the window that ends with this month


def windows_for(month: str, active_months: int = DEFAULT_ACTIVE_MONTHS) -> MonthWindows:
    return MonthWindows(
        month,
        months_ending(shift_month(month, -1), active_months),
        months_ending(month, active_months),
    )


def retention_rate(start: int, end: int, new: int) -> float | None:
    """CRR in percent; None when nobody was a customer at the start."""
    if start <= 0:
        return None
    return (end - new) / start * 100.0


@dataclass(frozen=True)
class MonthReport:
    month: str
    customers_start: int
    customers_end: int
    new_customers: int
    retention_rate: float | None
    buyers: int
    repeat_buyers: int  # bought this month and had bought before
    orders: int
    revenue: float

    @property
    def repeat_purchase_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None

    @property
    def average_order_value(self) -> float | None:
        return self.revenue / self.orders if self.orders else None


def month_report(
    month: str, start: int, end: int, new: int, buyers: int, orders: int, revenue: float
) -> MonthReport:
    return MonthReport(
        month=month,
        customers_start=start,
        customers_end=end,
        new_customers=new,
        retention_rate=retention_rate(start, end, new),
        buyers=buyers,
        repeat_buyers=max(0, buyers - new),
        orders=orders,
        revenue=revenue,
    )
