"""The one compiled part: macha.monitor.detect._hsmatch, per-line pattern sets with Hyperscan (libhyperscan-dev).

It is optional. Without Hyperscan's headers and library the build skips it with a warning, and the pattern
matcher uses RE2 instead (same answers, slower on busy logs).
"""

import os

from setuptools import Extension, setup

hs_include = os.environ.get("MACHA_HYPERSCAN_INCLUDE", "/usr/include")

setup(
    ext_modules=[
        Extension(
            "macha.monitor.detect._hsmatch",
            sources=["macha/monitor/detect/_hsmatch.c"],
            include_dirs=[hs_include],
            libraries=["hs"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
