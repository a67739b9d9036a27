"""A TF-Serving-compatible model server, its gRPC client and command-line tools."""
