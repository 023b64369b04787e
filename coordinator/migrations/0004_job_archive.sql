-- Finished jobs, moved here from ZooKeeper after the retention window by the leader's
-- pruner.  record holds the whole job record (Job.to_dict()); the other columns are
-- copies of its fields for searching.  Listings page by job_id (ULIDs sort by time), which
-- the (tenant, job_id) index and InnoDB's implicit primary key suffix on (state) and
-- (type) serve.
CREATE TABLE IF NOT EXISTS job_archive (
    job_id      CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    tenant      VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    type        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    state       VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NULL,
    record      JSON NOT NULL,
    archived_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (job_id),
    KEY job_archive_tenant_created (tenant, created_at),
    KEY job_archive_tenant_id (tenant, job_id),
    KEY job_archive_state (state),
    KEY job_archive_type (type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
