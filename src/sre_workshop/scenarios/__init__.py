"""Scored incident scenarios: a fault (or none) with its parameters, load and a time limit, run and scored.

The import rule: scenarios may import faults and diagnose; diagnose never imports scenarios.
"""
