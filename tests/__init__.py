"""The test suite: a package, so its helpers import as ``tests.support.*`` and conftest loads once."""
