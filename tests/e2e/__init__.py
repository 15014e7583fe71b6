"""End-to-end tests of the study page.

A package, so that its conftest never shadows tests/conftest.py.
"""
