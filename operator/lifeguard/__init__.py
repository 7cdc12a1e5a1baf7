"""River Lifeguard: a Kubernetes operator that keeps long-running River jobs honest."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("river-lifeguard")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
