"""zofw: private, memory-lean fine-tuning of language models with zeroth-order optimization."""

from zofw.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"
__all__ = ["hookimpl", "hookspec", "__version__"]
