-- Secrets every frontend must share and nobody has to configure: the first frontend that
-- needs one inserts a random value (INSERT IGNORE, so two at once agree on the first), and
-- every frontend reads it once.  'cursor' keys the list cursors (frontend/cursors.py).
-- Deleting a row rotates its secret at the frontends' next restart; cursors sealed with
-- the old one are then refused with 400, and clients start their listing again.
CREATE TABLE IF NOT EXISTS cluster_secrets (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    secret     VARBINARY(64) NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
