"""First-party plugin: Hugging Face model adapters (causal LMs such as OPT, masked LMs such as RoBERTa)."""

from zofw import hookimpl
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM


@hookimpl
def register_models(register):
    register(CausalLM)
    register(MaskedLM)
