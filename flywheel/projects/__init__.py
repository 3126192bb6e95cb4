"""Projects: Sensors-style tenants. Every table and query is scoped to one."""
