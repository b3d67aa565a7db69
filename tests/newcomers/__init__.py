"""Newcomer entries, one per registry axis, written as a user adding a component would write them:
one file each, following only the contract in ``lit_algos.components`` / ``lit_algos.optim``.
``plugin.py`` is their "one registry line". ``tests/test_extensibility.py`` runs the existing
parametrized tests with them registered, and none of those tests names them."""
