"""Access-request gateway: request store, approval API and hook deliveries."""

__version__ = "0.1.0"
