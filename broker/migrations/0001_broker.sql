-- The contract broker's data: pacticipants and their versions (branches, tags), immutable pact
-- contents identified by their SHA-256, which consumer version published which content for
-- which provider, verification results, environments, deployments and releases.

CREATE TABLE pacticipants (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    main_branch TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE versions (
    id             BIGSERIAL PRIMARY KEY,
    pacticipant_id BIGINT NOT NULL REFERENCES pacticipants (id),
    number         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (pacticipant_id, number)
);

CREATE TABLE version_branches (
    version_id BIGINT NOT NULL REFERENCES versions (id),
    branch     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (version_id, branch)
);

CREATE TABLE version_tags (
    version_id BIGINT NOT NULL REFERENCES versions (id),
    tag        TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (version_id, tag)
);

-- Content is the pact in faultline's canonical form (sorted keys), so the same contract
-- always has the same sha.
CREATE TABLE pact_contents (
    sha         TEXT PRIMARY KEY,
    consumer_id BIGINT NOT NULL REFERENCES pacticipants (id),
    provider_id BIGINT NOT NULL REFERENCES pacticipants (id),
    content     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Published contracts are immutable: one content per consumer version and provider.
CREATE TABLE pact_publications (
    id                  BIGSERIAL PRIMARY KEY,
    consumer_version_id BIGINT NOT NULL REFERENCES versions (id),
    provider_id         BIGINT NOT NULL REFERENCES pacticipants (id),
    sha                 TEXT NOT NULL REFERENCES pact_contents (sha),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (consumer_version_id, provider_id)
);

CREATE TABLE verifications (
    id                  BIGSERIAL PRIMARY KEY,
    sha                 TEXT NOT NULL REFERENCES pact_contents (sha),
    provider_version_id BIGINT NOT NULL REFERENCES versions (id),
    success             BOOLEAN NOT NULL,
    build_url           TEXT,
    test_results        JSONB NOT NULL DEFAULT '[]',
    verified_by         JSONB,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX verifications_by_sha ON verifications (sha, provider_version_id);

CREATE TABLE environments (
    uuid         UUID PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT,
    production   BOOLEAN NOT NULL DEFAULT false,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- kind 'deployment': one current version per pacticipant and environment (a new deployment
-- ends the previous one); kind 'release': every released version stays supported.
CREATE TABLE deployments (
    uuid             UUID PRIMARY KEY,
    version_id       BIGINT NOT NULL REFERENCES versions (id),
    environment_uuid UUID NOT NULL REFERENCES environments (uuid),
    kind             TEXT NOT NULL CHECK (kind IN ('deployment', 'release')),
    currently        BOOLEAN NOT NULL DEFAULT true,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
