"""pybuild: the command line. Thin click commands over builder, registry_client, runner and layers."""

__version__ = "0.1.0"
