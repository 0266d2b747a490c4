"""Payroll: weekly pay with overtime above 40 hours."""
