"""Stage 1, order build: price the cart, apply coupons, split into sub-orders, hold stock."""
