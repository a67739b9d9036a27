"""The `ganpipe` command-line tool: parser and dispatch, console output, the demo, the client commands."""
