-- The job types each tenant has used.  Every new type costs the cluster for good (pending
-- znodes, a heap in the leader, metric series), so a tenant may use at most
-- ZKQ_MAX_TYPES_PER_TENANT of them (frontend/jobtypes.py); a row is written the first
-- time a tenant submits a type, and is what that tenant's count is of.  An operator who
-- deletes a tenant's rows gives it room again (frontends forget at restart).
CREATE TABLE IF NOT EXISTS tenant_job_types (
    tenant     VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    job_type   VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    first_used DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (tenant, job_type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
