"""The version of the condense core distribution (``condense-toolbox``)."""

__version__ = "0.1.0"
