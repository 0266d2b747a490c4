"""Cost of a parcel by weight."""


def parcel_cost(weight_kg: float) -> float:
    """Base fee plus a price per started kilogram."""
    if weight_kg <= 0:
        raise ValueError("weight must be positive")
    return 4.5 + 1.2 * int(weight_kg + 0.999)
