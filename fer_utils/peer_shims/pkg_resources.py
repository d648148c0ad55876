"""The one function of setuptools' retired `pkg_resources` that the `fer` package calls.

setuptools 81 and later no longer ship `pkg_resources`, and `fer` imports it to find its
model files. fer_utils.peer puts this folder on the path of fer's child processes only.
"""

from importlib.resources import files

__all__ = ["resource_filename"]


def resource_filename(package: str, resource: str) -> str:
    """The file system path of `resource` inside the installed `package`."""
    return str(files(package).joinpath(resource))
