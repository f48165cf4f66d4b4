"""Everything that decodes or encodes media with PyAV (the ladder, avatars); the only package
that imports ``av``."""
