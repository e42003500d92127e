"""First-party plugin: tasks (data, prompt and metric)."""

from zofw import hookimpl
from zofw_tasks.drop import Drop
from zofw_tasks.sst2 import SST2
from zofw_tasks.support import SupportTickets


@hookimpl
def register_tasks(register):
    register(Drop)
    register(SST2)
    register(SupportTickets)
