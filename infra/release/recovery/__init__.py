"""Crash consistency: fault injection at named steps, finishing what a killed command left, stale stack locks."""
