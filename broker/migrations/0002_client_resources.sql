-- What the Pact Broker's own clients read and write beyond the first schema: a pacticipant's
-- display name and repository URL, and when a deployment ended or a release stopped being
-- supported (record-undeployment, record-support-ended).

ALTER TABLE pacticipants
    ADD COLUMN display_name   TEXT,
    ADD COLUMN repository_url TEXT;

ALTER TABLE deployments
    ADD COLUMN ended_at TIMESTAMPTZ;
