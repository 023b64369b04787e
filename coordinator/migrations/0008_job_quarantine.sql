-- Finished jobs the archive refused (a record MySQL's JSON column or its charset cannot
-- take, written before zkq checked payloads as it does now), so that one such record does
-- not stop the pruner: it is kept here, with MySQL's reason, and leaves ZooKeeper like
-- any other.  record is the job record exactly as zkq serialises it (JSON as Python
-- writes it, NaN and \ud800 escapes included), in a binary column that refuses nothing,
-- so the job can still be read (zkq job ID, GET /v1/jobs/ID) and nothing is lost.
-- tenant is kept in binary for the same reason.
CREATE TABLE IF NOT EXISTS job_quarantine (
    job_id          CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    tenant          VARBINARY(1024) NULL,
    record          LONGBLOB NOT NULL,
    reason          VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    quarantined_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
