"""Shipping costs."""
