"""registry_client package."""
