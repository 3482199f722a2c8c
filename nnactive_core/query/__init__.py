"""The query: the streaming patch engine that runs a strategy over the pool, and the checks of
everything a strategy plugin hands back to it. It sits above both the patch types and the strategy
API, which it combines."""
