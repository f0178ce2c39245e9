"""Database plumbing: where PostgreSQL comes from, the connection pool and migrations."""
