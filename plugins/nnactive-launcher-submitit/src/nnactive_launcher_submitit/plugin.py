"""Entry point of the plugin: registers the ``submitit`` launcher. submitit itself is imported only
when a grid is launched, so listing plugins stays fast."""

from nnactive_core import hookimpl


@hookimpl
def nnactive_register_launchers(register):
    from nnactive_launcher_submitit.launcher import SubmititLauncher

    register(SubmititLauncher())
