"""Message understanding: raw bytes to a ParsedMessage (pure, never raises on input)."""
