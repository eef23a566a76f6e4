"""Shim so Beam's ``--setup_file ./setup.py`` can build the worker package.

All metadata lives in pyproject.toml and setup.cfg.
"""

from setuptools import setup

setup()
