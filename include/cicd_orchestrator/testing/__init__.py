"""Test doubles that ship with the package so tests, demos and benchmarks can start them."""
