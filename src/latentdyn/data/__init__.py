"""Datasets: simulators, NWB readers and the binned-dataset file format."""
