"""Access: console users, roles and permissions, data scopes, API tokens."""
