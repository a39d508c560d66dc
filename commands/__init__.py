"""The command line's subcommands beyond cli.py's core (extract, train, evaluate, predict, serve, info), one
module per group, and what they share (commands.common)."""
