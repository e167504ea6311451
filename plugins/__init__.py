"""alignbench's built-in plugins, registered through the ``alignbench`` entry points like any third party."""
