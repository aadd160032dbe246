"""Network plumbing shared by servers and clients (no exchange knowledge)."""
