-- Idempotency-Key of job submissions, shared by every frontend: a client that resends a
-- POST /v1/jobs (or /v1/jobs/batch) with the same key, to whichever frontend, gets the
-- same job ids back instead of new jobs.  Keys are scoped to the tenant.  request_hash
-- (SHA-256 of the endpoint and the canonical body) tells a retry from a reuse of the key
-- for another request, which is refused.  job_ids is the comma-separated list of the
-- ULIDs chosen for the request (1 for a single submission, up to 1,000 for a batch).
-- Rows older than a day may be deleted: clients retry within minutes.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    idem_key     VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    request_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    job_ids      MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (tenant, idem_key),
    KEY idempotency_keys_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
