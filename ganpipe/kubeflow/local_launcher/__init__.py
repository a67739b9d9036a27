"""A local stand-in for the KFP backend: runs a compiled package task by task on this machine."""
