"""The ``vocoder`` command: one module per subcommand (see ``vocoder --help``)."""
