"""The JSON API: one module per blueprint."""
