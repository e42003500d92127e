"""zofw: private, memory-lean fine-tuning of language models with zeroth-order optimization.

The Python API (``zofw.run``, ``zofw.training``, ``zofw.PrivateZeroOrder``) is imported on first use, so
that importing zofw (and the CLI's quick commands) does not import torch.
"""

from typing import Any

from zofw.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"
__all__ = ["hookimpl", "hookspec", "__version__", "run", "training", "load", "Result", "PrivateZeroOrder"]
_API = {"run", "training", "load", "Result", "PrivateZeroOrder"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from zofw import api

        return getattr(api, name)
    raise AttributeError(f"module 'zofw' has no attribute {name!r}")
