-- Rate-limit counters shared by every frontend: hits of one key in one fixed window
-- (window_start is Unix seconds).  The frontends weigh the previous window in to get a
-- sliding-window estimate; rows of windows long past are deleted in small batches.
-- No foreign key to api_keys: it would cost a lookup on the hottest insert of all.
CREATE TABLE IF NOT EXISTS rate_limit_counters (
    key_id       BIGINT UNSIGNED NOT NULL,
    window_start BIGINT NOT NULL,
    hits         INT UNSIGNED NOT NULL,
    PRIMARY KEY (key_id, window_start),
    KEY rate_limit_counters_window (window_start)
) ENGINE=InnoDB;
