"""Providers postrag talks to (embedding models, later chat models), behind small Protocols."""
