"""Use cases: transactions, authorization decisions and providers; no Flask, no SQL."""
