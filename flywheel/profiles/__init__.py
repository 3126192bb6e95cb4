"""Customer profiles, items (products) and the property schema registry."""
