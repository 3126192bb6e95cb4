"""Content (素材库): materials, channel templates, compliance review and the claims checker."""
