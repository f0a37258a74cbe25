"""The Great Expectations suites (``*.json`` beside this file), shipped as package data.

The suites stay in the repository's top-level ``expectations/`` folder, where
people look for them; this file only makes the folder an importable package so
that a wheel carries the JSON (``[tool.setuptools.package-data]``) and an
installed ``din_model`` finds it with ``importlib.resources.files("expectations")``
instead of a path relative to the source checkout. Keep it free of imports.
"""
