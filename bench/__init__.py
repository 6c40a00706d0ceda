"""MedSpace benchmarks: `make bench` runs every module named in `bench.__main__.SUITES`."""
