"""The command-line interface: parses flags into configs, calls the library, prints. Only it installs signal handlers,
prints warnings and draws progress."""
