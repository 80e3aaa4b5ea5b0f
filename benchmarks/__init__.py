"""tabgen's benchmarks: scripts run from the repository root as ``python -m benchmarks.<script>``.

:mod:`benchmarks.harness` holds what they share (the shared tables, fitting, the CSV round trip,
scoring, the machine, the records) and :mod:`benchmarks.peers` the models tabgen is compared with;
the scripts import only from those two. ``benchmarks/README.md`` lists every script.
"""
