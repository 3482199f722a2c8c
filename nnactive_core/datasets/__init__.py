"""Dataset adapters, the built-in demo dataset, validation and preparation steps."""
