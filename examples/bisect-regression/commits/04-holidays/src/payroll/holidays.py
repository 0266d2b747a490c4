"""Holiday pay."""


def holiday_pay(days: int, daily: float) -> float:
    """Holidays are paid at the daily rate."""
    return round(days * daily, 2)
