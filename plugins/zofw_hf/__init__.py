"""First-party plugin: Hugging Face model adapters (causal LMs such as OPT, masked LMs such as
RoBERTa, sentence encoders such as MiniLM)."""

from zofw import hookimpl
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM
from zofw_hf.sentence import SentenceEncoder


@hookimpl
def register_models(register):
    register(CausalLM)
    register(MaskedLM)
    register(SentenceEncoder)
