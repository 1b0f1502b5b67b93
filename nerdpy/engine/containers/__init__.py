"""Containers: the typed spec, run/create options and validation, lifecycle, the OCI spec, exec, cp, export, inspect, logs, volumes."""
