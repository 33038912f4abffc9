"""Configuration: the typed sections of params.yaml (sections.py), reading and completing a
params.yaml (params.py), and the presets that overlay the default (presets.py). Imports nothing."""
