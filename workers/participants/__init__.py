"""TCC participants: funds, stock and coupons, each on the one barrier primitive."""
