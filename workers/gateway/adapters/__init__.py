"""One adapter per gateway API shape, each implementing `workers.gateway.port.Gateway`."""
