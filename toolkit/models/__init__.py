"""Model builders, one family per sub-package."""
