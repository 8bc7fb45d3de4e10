"""Benchmarks: ``python -m tinyinfer.bench <subcommand>`` (see __main__.py for the list)."""
