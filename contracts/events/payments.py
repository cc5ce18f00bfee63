"""Events of the payments service (payment attempts with external providers)."""
