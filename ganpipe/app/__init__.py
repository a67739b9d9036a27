"""The `ganpipe` tool: parser and dispatch, console output, the demo, the client commands."""
