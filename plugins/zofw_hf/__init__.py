"""First-party plugin: Hugging Face model adapters (causal LMs such as OPT, masked LMs such as RoBERTa)."""

from zofw import hookimpl


@hookimpl
def register_models(register):
    pass
