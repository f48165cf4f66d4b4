"""Everything that decodes or encodes pictures with PyAV; the only package that imports ``av``."""
