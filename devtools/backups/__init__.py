"""Data that outlives a database or a cluster: dumps, restores, and moving the development cluster to a new
PostgreSQL major."""
