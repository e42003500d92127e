"""First-party plugin: tasks (data, prompt and metric)."""

from zofw import hookimpl


@hookimpl
def register_tasks(register):
    pass
