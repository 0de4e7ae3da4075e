-- Platform-funded coupons: the platform's coupon subsidy account pays that part of the
-- discount, and the merchant is paid as if it had not been given.

ALTER TABLE sub_orders
    ADD COLUMN platform_discount bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT sub_orders_platform_discount_check
        CHECK (platform_discount >= 0 AND platform_discount <= discount);

-- amount is now what the merchant is owed (gross = what the buyer paid + subsidy).
ALTER TABLE transaction_details
    ADD COLUMN subsidy bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT transaction_details_subsidy_check CHECK (subsidy >= 0 AND subsidy <= amount);
