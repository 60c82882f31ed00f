"""Dashboards for comparing runs: run names from conditions, TensorBoard's custom-scalars layout, a W&B workspace."""
