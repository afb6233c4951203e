"""The `sre-workshop` command line."""
