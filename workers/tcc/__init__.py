"""TCC: one barrier primitive for every participant (funds, stock, coupons)."""
