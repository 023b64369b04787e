-- API keys of the HTTP frontends.
--
-- Only a SHA-256 of each secret is kept.  The secrets are 256-bit random tokens, so a fast
-- hash cannot be brute-forced and costs nothing per request (a slow password hash would).
-- key_prefix holds the first 8 characters after "zkq_", for operators to tell keys apart
-- and for the lookup; it is case-sensitive, hence the binary collation.
CREATE TABLE IF NOT EXISTS api_keys (
    id                    BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    key_prefix            CHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    key_hash              CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    tenant                VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    scopes                SET('submit', 'read', 'admin') NOT NULL,
    -- NULL: the frontends' default limit
    rate_limit_per_minute INT UNSIGNED NULL,
    name                  VARCHAR(200) NOT NULL DEFAULT '',
    created_at            DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    revoked_at            DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY api_keys_hash (key_hash),
    KEY api_keys_prefix (key_prefix),
    KEY api_keys_tenant (tenant)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
