"""Build hook: cythonize every kitch/*.pyx so a new native module needs no change here."""

from glob import glob

from Cython.Build import cythonize
from setuptools import setup

modules = sorted(glob("kitch/*.pyx"))
setup(
    ext_modules=cythonize(
        modules,
        language_level="3",
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
    if modules
    else [],
)
