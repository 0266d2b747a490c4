"""Declaring a missing Python requirement where the project declares its dependencies:
``pyproject.toml`` (PEP 621, PEP 735, Poetry, Hatch, PDM), ``setup.cfg``, ``setup.py`` and
requirements files, in the version style the project uses, with the lock files it keeps."""
