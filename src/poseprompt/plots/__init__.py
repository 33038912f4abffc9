"""Figures of the artifact: one style, drawing helpers, and one module per figure family."""
