"""The checking machinery: comparisons with coverage floors and the independently typed Table 1."""

__all__ = []
