"""HTTP API, CLI and web pages. Nothing imports this package."""
