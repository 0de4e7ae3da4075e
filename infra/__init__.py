"""Infrastructure: local services, settings and database migrations."""
