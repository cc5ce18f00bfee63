"""The wire: the event envelope and versioned payload schemas shared by every service."""
