"""The gateway port and its adapters: the one place payflow talks to payment gateways."""
