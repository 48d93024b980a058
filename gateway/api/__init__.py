"""The approval API of SPEC §9: aiohttp handlers, one module per family of routes."""
