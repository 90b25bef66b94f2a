"""The compiled forwarding lane (media/_lane.c); everything else is declared in setup.cfg.

The extension is optional: without a C compiler or Python's headers the install goes on and
forwarding uses the pure-Python lane (media/lane.py). `make test` installs both and requires the
compiled one (tests/media/test_lane.py, RADIOCORE_REQUIRE_COMPILED_LANE=1).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "media._lane",
            sources=["media/_lane.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            libraries=["m"],
            optional=True,
        )
    ]
)
