"""Admin surfaces: the review service and the CLI and web console over it."""
