"""The local stack: every component of the architecture as a real process on loopback."""
