"""Event models, one module per topic family."""
