"""Uncertainty query strategies for nnactive: PE, EE, BALD, their power, soft-rank and k-center
variants, and the class-stratified PE family (ClaS / ClaP / ClaSP PE)."""

__version__ = "0.1.0"
