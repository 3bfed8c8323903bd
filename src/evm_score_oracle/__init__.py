"""Signed trust scores for EVM wallets."""

__version__ = "0.1.0"
