-- The rate-limit policy a key names (a policy from the configuration); NULL: the default.
ALTER TABLE api_keys ADD COLUMN rate_limit_policy text;
