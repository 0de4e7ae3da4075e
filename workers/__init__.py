"""payflow workers: the five stages, the gateway simulator and the runtime under them."""
