"""Weekly pay."""

OVERTIME_RATE = 1.25


def weekly_pay(hours: float, hourly: float, rate: float = OVERTIME_RATE) -> float:
    """Hours above 40 are paid at the overtime rate."""
    regular = min(hours, 40)
    extra = max(hours - 40, 0)
    return round(regular * hourly + extra * hourly * rate, 2)
