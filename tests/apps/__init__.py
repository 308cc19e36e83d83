"""Importable applications for the CLI tests (``python -m blazeasgi tests.apps.cli_apps:app``)."""
