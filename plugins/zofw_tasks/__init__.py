"""First-party plugin: tasks (data, prompt and metric)."""

from zofw import hookimpl
from zofw_tasks.boolq import BoolQ
from zofw_tasks.drop import Drop
from zofw_tasks.nli import CB, MNLI, RTE, SNLI
from zofw_tasks.squad import Squad
from zofw_tasks.sst2 import SST2
from zofw_tasks.sst5 import SST5
from zofw_tasks.support import SupportTickets
from zofw_tasks.trec import TREC
from zofw_tasks.user_data import TextClassification

TASKS = (SST2, SST5, SNLI, MNLI, RTE, TREC, BoolQ, CB, Squad, Drop, SupportTickets, TextClassification)


@hookimpl
def register_tasks(register):
    for task in TASKS:
        register(task)
