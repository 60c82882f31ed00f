"""Stability report: GO / NO-GO gate, comparison plots and seed aggregates from what runs wrote."""
