"""The `payflow` command."""
