"""The model: one module per idea of the paper (see lifter.py for the data flow). Imports nothing:
``from poseprompt.model.lifter import build_model``."""
