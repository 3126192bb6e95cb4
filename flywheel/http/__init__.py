"""FastAPI plumbing shared by every domain's routes: runtime and session dependencies."""
