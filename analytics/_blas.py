"""Keep OpenBLAS to one thread: ingest is one core per site (DESIGN.md, Scale), and its small
matrix products lose more to thread hand-offs than they gain, above all on a shared host."""
from __future__ import annotations

import ctypes
import glob
import logging
import os

log = logging.getLogger(__name__)


def limit_blas_threads(n: int = 1) -> bool:
    import numpy

    libdir = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    done = False
    for path in glob.glob(os.path.join(libdir, "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                     "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                done = True
                break
    if not done:
        log.debug("could not limit BLAS threads (no OpenBLAS found in %s)", libdir)
    return done
