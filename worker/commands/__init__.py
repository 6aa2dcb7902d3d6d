"""One module per `agent-worker` subcommand, each exposing `add_arguments(parser)` and `run(args) -> int`."""
