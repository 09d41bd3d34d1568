"""``fedbus demo``: a whole federation on loopback, set up through the real CLI, in one command.

* :mod:`~adapters.demo.cli`: the click command;
* :mod:`~adapters.demo.runner`: runs the script, reports progress and always stops what it started;
* :mod:`~adapters.demo.script`: the steps (the admin workflow of a registry and two departments);
* :mod:`~adapters.demo.federation`: the demo's identifiers, ports and working-directory layout;
* :mod:`~adapters.demo.commands`: running ``fedbus ...`` commands, logged to ``logs/commands.log``;
* :mod:`~adapters.demo.processes`: the long-running processes (registry, security servers, providers);
* :mod:`~adapters.demo.progress`: one line per step with timing, a spinner on waits;
* :mod:`~adapters.demo.snippets`: the ready-to-paste curl and Python examples.
"""
