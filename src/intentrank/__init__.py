"""intentrank: feed ranking that optimises for what users want, not what they click."""

__version__ = "0.1.0"
