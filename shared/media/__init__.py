"""Media: upload validation, storage with revocable long-lived URLs, and records."""
