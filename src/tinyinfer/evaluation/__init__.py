"""The parts of ``tinyinfer.evaluate`` (see tinyinfer/evaluate.py, the entry point):

  dataset.py       a folder of class folders or a CSV of path,label rows -> labelled items
  scoring.py       decode and score a batch of items -> one JSON-ready row per image
  results.py       the JSON-lines output file: resume, append and flush row by row
  reference.py     the PyTorch reference for --compare-with torch
  dask_runner.py   the same batches as Dask tasks on a LocalCluster or an existing cluster
  command.py       the `tinyinfer eval` subcommand (cli.py adds it)
"""
