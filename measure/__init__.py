"""Measurement: benchmarks (`kate bench ...`), evaluations and the report writers that regenerate docs/
(qa-results, calibration, bot-results, benchmarks). Stands on core and Kate's libraries; the CLI in
kate/ only parses arguments and calls in."""
