"""Printable shipping labels."""
import sys


def label(name: str, city: str) -> str:
    header = f"SHIPPING LABEL"
    return f"{header}\n{name}\n{city.upper()}"
