-- Who asked what, how it went and how long it took: one row per HTTP request, written in
-- batches by the frontends.  key_id and tenant are NULL for unauthenticated requests.
CREATE TABLE IF NOT EXISTS request_log (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    at          DATETIME(6) NOT NULL,
    key_id      BIGINT UNSIGNED NULL,
    tenant      VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    method      VARCHAR(16) CHARACTER SET ascii NOT NULL,
    path        VARCHAR(512) NOT NULL,
    status      SMALLINT UNSIGNED NOT NULL,
    latency_ms  INT UNSIGNED NOT NULL,
    job_id      CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NULL,
    client_addr VARCHAR(45) CHARACTER SET ascii NULL,
    PRIMARY KEY (id),
    KEY request_log_at (at),
    KEY request_log_key (key_id, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
