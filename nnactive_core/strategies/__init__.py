"""Query strategy API (for plugin authors) and the core's built-in plain ``random``."""
