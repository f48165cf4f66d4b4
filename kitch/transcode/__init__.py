"""Everything that decodes or encodes media with PyAV: the only package that imports ``av``."""
