"""Provider adapters, each written against the provider's own HTTP protocol."""
