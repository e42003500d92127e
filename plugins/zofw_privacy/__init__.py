"""First-party plugin: privacy accountants from dp-accounting (RDP, PLD) and prv-accountant (PRV)."""

from zofw import hookimpl
from zofw_privacy.accountants import PLDAccountant, PRVAccountant, RDPAccountant


@hookimpl
def register_accountants(register):
    for accountant in (RDPAccountant, PLDAccountant, PRVAccountant):
        register(accountant)
