"""First-party plugin: privacy accountants from dp-accounting (RDP, PLD), prv-accountant (PRV), and pure ε-DP."""

from zofw import hookimpl
from zofw_privacy.accountants import PLDAccountant, PRVAccountant, PureDPAccountant, RDPAccountant


@hookimpl
def register_accountants(register):
    for accountant in (RDPAccountant, PLDAccountant, PRVAccountant, PureDPAccountant):
        register(accountant)
