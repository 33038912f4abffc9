"""Helpers every part shares: atomic writes (io), statistics (stats), metrics, the skeleton,
devices and the layout of a run's files (paths). Imports nothing."""
