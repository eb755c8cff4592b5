"""cnet: Docker-style bridge networking for Linux processes on one host."""

import os as _os

__version__ = "0.1.0"

if _os.environ.get("CNET_PROFILE"):  # phase timings on stderr at exit (cnet/_profile.py)
    import time as _time

    _started = _time.time(), _time.perf_counter()
    from . import _profile

    _profile.start(_os.environ["CNET_PROFILE"], *_started)
